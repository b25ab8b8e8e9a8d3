"""`edgeq pack`, `edgeq inspect`, `edgeq dequant`: the host side of the blob."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edgeq.blob import read_blob, write_blob
from edgeq.blob.writer import atomic_write
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.formats.packed import LAYOUT_NAMES
from edgeq.graph import Graph

PLAIN_NAMES = {F.FMT_F32: "f32", F.FMT_F16: "f16", F.FMT_I32: "i32", F.FMT_I8: "i8", F.FMT_U8: "u8"}


def format_name(fmt_id: int) -> str:
    for name, fmt in FORMATS.items():
        if fmt.id == fmt_id:
            return name
    return PLAIN_NAMES.get(fmt_id, f"fmt{fmt_id}")


def to_nhwc(x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Accepts data in torch's NCHW order (or already NHWC) for an NHWC graph input."""
    x = np.asarray(x, np.float32)
    if x.ndim == 4 and tuple(x.shape[1:]) != tuple(input_shape[1:]):
        x = x.transpose(0, 2, 3, 1)
    return x


def load_model(path: Path):
    """Model file -> FloatGraph (.pt2, to be quantized) or an already quantized Graph (.gguf, .tflite)."""
    if not path.exists():
        raise EdgeqError(f"{path}: no such model file")
    if path.suffix == ".pt2":
        import warnings

        from edgeq.importers.torch_export import from_pt2

        with warnings.catch_warnings(record=True) as caught:  # e.g. torchao scales rounded to fp16
            warnings.simplefilter("always", UserWarning)
            fg = from_pt2(path)
        for w in caught:
            if "torchao" in str(w.message):
                click.echo(f"note: {w.message}", err=True)
        return fg
    if path.suffix == ".gguf":
        from edgeq.importers.gguf_import import from_gguf_file

        return from_gguf_file(path)
    if path.suffix == ".tflite":
        from edgeq.importers.tflite_import import from_tflite

        return from_tflite(path)
    raise EdgeqError(f"{path}: unsupported model type '{path.suffix}' (supported: .pt2, .gguf, .tflite)")


def _write_imported(graph: Graph, model: Path, fmt: str | None, calib: Path | None, target: str,
                    output: Path, preprocess: str | None) -> None:
    """Writes a model that arrives quantized (.gguf, .tflite) as imported: no recipe, no calibration."""
    from edgeq.packer import apply_target_layout

    if fmt or calib:
        raise EdgeqError(f"{model}: -f/--format and --calib do not apply to {model.suffix} models, whose "
                         "weights and activation parameters are already quantized")
    if target:
        from edgeq.targets.registry import get_target

        get_target(target)  # an unknown target is an error here too
    graph.target = target
    from edgeq.packer import set_kernel_hints

    kernels = set_kernel_hints(graph, target)
    if kernels:
        graph.metadata["kernels"] = kernels
    apply_target_layout(graph, target)
    if preprocess:
        graph.metadata["preprocess"] = preprocess_metadata(preprocess, graph.tensors[graph.inputs[0]].shape)
    size = write_blob(graph, output)
    consts = sum(t.is_const for t in graph.tensors)
    click.echo(f"wrote {output} ({size} bytes, {consts} constant tensors, {len(graph.ops)} ops, from {model.suffix})")
    converted = {name: e for name, e in graph.metadata.get("gguf", {}).get("tensors", {}).items()
                 if "max_abs_error" in e}
    if converted:
        worst = max(e["max_abs_error"] for e in converted.values())
        click.echo(f"note: {len(converted)} Q8_0 tensor(s) requantized to i8 per row (not lossless: max abs "
                   f"error {worst:.3g}, per tensor in the blob metadata)", err=True)


def preprocess_metadata(spec: str, input_shape: tuple[int, ...]) -> dict:
    """The full image preprocessing recipe for the blob metadata (edgeq.preprocess)."""
    from edgeq.preprocess import complete, parse_spec

    return complete(parse_spec(spec), tuple(input_shape))


def calibration_data(path: Path | None, fg, model: Path):
    """(calib, tests, labels) from an .npz with x [, x_test, y_test], or the .pt2's example input."""
    if path is None:
        from edgeq.importers.torch_export import load_pt2

        ex = load_pt2(model).example_inputs[0][0].detach().numpy()
        click.echo("note: no --calib data given; calibrating on the model's example input only", err=True)
        x = to_nhwc(ex, fg.input_shape)
        return x, None, None
    try:
        data = np.load(path)
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty file
        raise EdgeqError(f"{path}: cannot read calibration data ({e})") from None
    if "x" not in data:
        raise EdgeqError(f"{path}: calibration .npz needs an array named 'x' (has {', '.join(data.files)})")
    x = to_nhwc(data["x"], fg.input_shape)
    tests = to_nhwc(data["x_test"], fg.input_shape) if "x_test" in data else None
    labels = data.get("y_test")
    return x, tests, labels


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-f", "--format", "fmt", type=click.Choice(sorted(FORMATS)), default=None,
              help="Weight format for every layer [default: the target's default_format, else t2].")
@click.option("--group", type=click.Choice(["32", "64", "128"]), default="32", show_default=True,
              help="Q4 group size.")
@click.option("--first-last-i8", is_flag=True, help="Keep the first and last layers int8 (BNN practice).")
@click.option("--target", default="", help="Target id the blob is packed for (see `edgeq targets list`).")
@click.option("--calib", type=click.Path(path_type=Path, dir_okay=False),
              help=".npz with calibration inputs 'x' and optional 'x_test'/'y_test' to bundle.")
@click.option("--tests", "n_tests", type=click.IntRange(0, 10000), default=32, show_default=True,
              help="How many of the .npz's x_test inputs to bundle (with reference outputs) for device checks.")
@click.option("--preprocess", default=None, metavar="SPEC",
              help="Image preprocessing to record for `edgeq run --input IMAGE`: key=value list "
                   "(size=WxH, mode=L|RGB, resize=box|bilinear|..., invert=0|1, scale=1/255, mean=.., std=..) "
                   "or a .json file (docs/images.md).")
@click.option("--plan", "plan_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Per-layer formats from `edgeq plan -o plan.json` (overrides -f, --group, --first-last-i8).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
def pack(model: Path, fmt: str | None, group: str, first_last_i8: bool, target: str, calib: Path | None,
         n_tests: int, preprocess: str | None, plan_path: Path | None, output: Path) -> None:
    """Quantize MODEL (.pt2) or repack an already quantized one (.gguf, .tflite), and write a blob."""
    from edgeq.packer import Recipe
    from edgeq.packer import pack as pack_graph

    fg = load_model(model)
    if isinstance(fg, Graph):
        if plan_path:
            raise EdgeqError(f"{model}: --plan applies to float .pt2 models, not already quantized {model.suffix}")
        _write_imported(fg, model, fmt, calib, target, output, preprocess)
        return
    layer_formats: dict[str, str] = {}
    if plan_path:
        from edgeq.cli_plan import read_plan
        from edgeq.packer import WEIGHT_KINDS

        layer_formats, plan_group = read_plan(plan_path, [n.name for n in fg.nodes if n.kind in WEIGHT_KINDS])
        group, first_last_i8 = str(plan_group), False
    extra = {"preprocess": preprocess_metadata(preprocess, fg.input_shape)} if preprocess else None
    if target:
        from edgeq.targets.registry import get_target

        fmt = fmt or get_target(target).default_format
    fmt = fmt or "t2"
    x, tests, labels = calibration_data(calib, fg, model)
    if tests is not None:
        tests = tests[:n_tests] if n_tests else None
        labels = labels[:n_tests] if labels is not None and n_tests else None
    layers = sum(n.kind in ("linear", "conv2d", "dwconv2d") for n in fg.nodes)
    with Progress(transient=True) as bar:
        task = bar.add_task("packing", total=layers)
        recipe = Recipe(fmt, int(group), layer_formats=layer_formats, first_last_i8=first_last_i8)
        graph = pack_graph(fg, x, recipe, target=target,
                           tests=tests, labels=labels, metadata=extra,
                           progress=lambda s: bar.update(task, advance=1, description=s))
    size = write_blob(graph, output)
    chosen = graph.metadata["recipe"]["layers"]  # the plan's, or pre-quantized layers' own formats
    used = ", ".join(f"{n}={f}" for n, f in chosen.items()) if len(set(chosen.values())) > 1 else \
        f"format {next(iter(chosen.values()), fmt)}"
    click.echo(f"wrote {output} ({size} bytes, {layers} layers, {used})")


def blob_summary(blob) -> dict:
    """Per-tensor sizes and bits/weight, totals, and the ratio vs fp32 (for inspect)."""
    tensors = []
    weight_bytes = fp32_bytes = 0
    for rec, t in zip(blob.records, blob.graph.tensors):
        if not t.is_const:
            continue
        entry = {"name": t.name, "format": format_name(t.format), "layout": LAYOUT_NAMES[rec.layout],
                 "shape": list(t.shape), "bytes": int(rec.data_size)}
        if t.packed is not None:
            count = t.shape[0] * t.shape[1]
            entry["bits_per_weight"] = round(rec.data_size * 8 / count, 4)
            weight_bytes += rec.data_size
            fp32_bytes += 4 * count
        tensors.append(entry)
    return {
        "file": str(blob.path), "version": blob.version, "target": blob.graph.target, "bytes": blob.size,
        "ops": [op.name for op in blob.graph.ops], "tensors": tensors,
        "weights": {"bytes": int(weight_bytes), "fp32_bytes": int(fp32_bytes),
                    "compression_vs_fp32": round(fp32_bytes / weight_bytes, 2) if weight_bytes else None},
        "checks": blob.checks, "metadata": blob.metadata,
    }


@click.command()
@click.argument("blob", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(blob: Path, as_json: bool) -> None:
    """Validate BLOB and list its tensors, formats and bits/weight."""
    info = blob_summary(read_blob(blob))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    console = Console()
    table = Table(title=f"{blob.name}  v{info['version']}  target={info['target'] or 'any'}  {info['bytes']} bytes")
    for col in ("tensor", "format", "layout", "shape", "bytes", "bits/weight"):
        table.add_column(col, justify="right" if col in ("bytes", "bits/weight") else "left")
    for t in info["tensors"]:
        table.add_row(t["name"], t["format"], t["layout"], "x".join(map(str, t["shape"])), str(t["bytes"]),
                      f"{t['bits_per_weight']:.3f}" if "bits_per_weight" in t else "")
    console.print(table)
    w = info["weights"]
    console.print(f"weights {w['bytes']} bytes vs fp32 {w['fp32_bytes']} bytes: {w['compression_vs_fp32']}x smaller")
    console.print(f"ops: {' -> '.join(info['ops'])}")
    console.print("checksums: " + ", ".join(f"{k} {v}" for k, v in info["checks"].items()))


@click.command()
@click.argument("blob", type=click.Path(path_type=Path))
@click.argument("tensor")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
def dequant(blob: Path, tensor: str, output: Path) -> None:
    """Write TENSOR of BLOB as dequantized float32 .npy."""
    b = read_blob(blob)
    found = [t for t in b.graph.tensors if t.name == tensor and t.is_const]
    if not found:
        names = [t.name for t in b.graph.tensors if t.packed is not None]
        raise EdgeqError(f"no constant tensor '{tensor}' in {blob}; weight tensors: {', '.join(names)}")
    t = found[0]
    values = t.packed.dequantize() if t.packed is not None else np.asarray(t.array, np.float32)
    buf = io.BytesIO()
    np.save(buf, values.astype(np.float32))
    atomic_write(output, buf.getvalue())
    click.echo(f"wrote {output} {list(values.shape)} float32")

