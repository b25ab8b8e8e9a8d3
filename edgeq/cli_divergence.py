"""`edgeq check-divergence`: the float model vs its quantized blob on the user's clean data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq.errors import AccuracyError, EdgeqError

SHOWN_INPUTS = 10


def load_data(path: Path, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, labels) from an .npz: x_test/y_test if present (held-out data), else x/y."""
    from edgeq.cli_pack import to_nhwc

    try:
        data = np.load(path)
    except (OSError, ValueError) as e:
        raise EdgeqError(f"{path}: cannot read data ({e})") from None
    key = "x_test" if "x_test" in data else "x" if "x" in data else None
    if key is None:
        raise EdgeqError(f"{path}: needs an array 'x_test' or 'x' (has {', '.join(data.files) or 'none'})")
    x = to_nhwc(data[key], input_shape)
    if tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise EdgeqError(f"{path}: '{key}' has shape {list(data[key].shape)}, the model takes "
                         f"[N, {', '.join(map(str, input_shape[1:]))}]")
    label_key = "y_test" if key == "x_test" else "y"
    labels = np.asarray(data[label_key]).reshape(-1) if label_key in data else None
    if labels is not None and len(labels) != len(x):
        raise EdgeqError(f"{path}: {len(labels)} labels for {len(x)} inputs")
    return x, labels


def _num(v: float | None, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def render(result, console: Console) -> None:
    head = Table(title="float vs quantized (host reference executor) on clean data")
    head.add_column("figure")
    head.add_column("value", justify="right")
    rows = [("inputs", str(result.inputs)),
            ("float accuracy", _num(result.float_accuracy, ".2%")),
            ("quantized accuracy", _num(result.quant_accuracy, ".2%")),
            ("top-1 agreement", f"{result.top1_agreement:.2%}"),
            ("quantization-induced errors", str(result.induced_errors)),
            ("divergence median / MAD (the data's noise)", f"{result.divergence_median:.4f} / {result.divergence_mad:.4f}")]
    if result.runtime_max_abs_diff is not None:
        rows.append(("C runtime vs reference, max |diff|", f"{result.runtime_max_abs_diff:.3g}"))
    for r in rows:
        head.add_row(*r)
    console.print(head)
    layers = Table(title=f"per layer (noise ratio: 1 = rounding noise, > {result.thresholds['noise_ratio_max']:g} flagged)")
    for col in ("layer", "format", "output rel. error", "noise ratio", "at cell edge (0.20 honest)", "flag"):
        layers.add_column(col, justify="left" if col in ("layer", "format", "flag") else "right")
    for lay in result.layers:
        layers.add_row(lay.name, lay.format, f"{lay.rel_error:.4f}", _num(lay.noise_ratio, ".2f"),
                       _num(lay.edge_fraction, ".2f"), "[bold red]FLAG[/]" if lay.flagged else "")
    console.print(layers)
    classes = Table(title="per class (label)" if result.labelled else "per class (float prediction)")
    for col in ("class", "inputs", "induced errors", "rate", "others' rate", "p", "flag"):
        classes.add_column(col, justify="right")
    for c in result.classes:
        classes.add_row(str(c.label), str(c.n), str(c.induced), f"{c.rate:.1%}", f"{c.expected_rate:.1%}",
                        f"{c.p_value:.1e}", "[bold red]FLAG[/]" if c.flagged else "")
    console.print(classes)
    if result.flagged_inputs:
        worst = sorted(result.flagged_inputs, key=lambda f: -f.robust_z)[:SHOWN_INPUTS]
        inputs = Table(title=f"flagged inputs ({len(result.flagged_inputs)}, worst {len(worst)})")
        for col in ("index", "label", "float", "quantized", "divergence", "robust z"):
            inputs.add_column(col, justify="right")
        for f in worst:
            inputs.add_row(str(f.index), "" if f.label is None else str(f.label), str(f.float_pred),
                           str(f.quant_pred), f"{f.divergence:.4f}", f"{f.robust_z:.1f}")
        console.print(inputs)
    for note in result.notes:
        console.print(f"note: {note}")
    if result.flagged:
        console.print("[bold red]FLAGGED[/]: " + "; ".join(result.reasons))
    else:
        console.print("[green]clean[/]: no layer, class or input beyond the expected quantization noise")


@click.command("check-divergence")
@click.argument("fp_model", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("blob", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--data", "data_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help=".npz of clean inputs: x_test (+ y_test), else x (+ y); torch NCHW or NHWC.")
@click.option("--runtime", "use_runtime", is_flag=True, help="Also run the blob in the C runtime and compare.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check_divergence(fp_model: Path, blob: Path, data_path: Path, use_runtime: bool, as_json: bool) -> None:
    """Compare FP_MODEL (.pt2) with its quantized BLOB per input, class and layer; exit 4 when the
    quantized model disagrees beyond the format's expected noise (docs/divergence.md)."""
    from edgeq.blob import read_blob
    from edgeq.divergence import check
    from edgeq.importers.torch_export import from_pt2

    if fp_model.suffix != ".pt2":
        raise EdgeqError(f"{fp_model}: the float model must be a torch.export .pt2 program")
    fg = from_pt2(fp_model)
    g = read_blob(blob).graph
    x, labels = load_data(data_path, fg.input_shape)
    if tuple(g.tensors[g.inputs[0]].shape[1:]) != tuple(fg.input_shape[1:]):
        raise EdgeqError(f"{blob} takes input {list(g.tensors[g.inputs[0]].shape)}, {fp_model} takes "
                         f"{list(fg.input_shape)}: not the same model")
    missing = [n.name for n in fg.nodes if n.kind in ("linear", "conv2d", "dwconv2d")
               and not any(t.name == n.name + ".weight" for t in g.tensors)]
    if missing:
        raise EdgeqError(f"{blob} has no weight for layer(s) {', '.join(missing)} of {fp_model}: "
                         "was it packed from this model?")
    runtime_out = None
    if use_runtime:
        from edgeq.runtime import Session

        runtime_out = Session(blob, max_batch=32).run([x])[0]
    result = check(fg, g, x, labels, runtime_out)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        render(result, Console())
    if result.flagged:
        raise AccuracyError("quantized model diverges from the float model beyond the expected quantization "
                            "noise: " + "; ".join(result.reasons))
