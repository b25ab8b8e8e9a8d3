"""`edgeq export-pte` and `edgeq compare`: the same model in edgeq, ExecuTorch and LiteRT on this host."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq.errors import EdgeqError


def _timed(fn: Callable[[np.ndarray], np.ndarray], x1: np.ndarray, runs: int, warmup: int) -> dict:
    """p50 etc. of `runs` single-sample calls after `warmup` (measured, wall clock)."""
    from edgeq.runner import profile

    for _ in range(warmup):
        fn(x1)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x1)
        samples.append(time.perf_counter() - t0)
    stats = profile.latency_stats(samples, "measured")
    stats.pop("samples_ms")
    return stats


def _accuracy(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, batched: bool) -> float:
    out = fn(x) if batched else np.concatenate([fn(x[i:i + 1]) for i in range(len(x))])
    return float(np.mean(out.reshape(len(x), -1).argmax(1) == y))


def _litert(path: Path, threads: int):
    """LiteRT (ai-edge-litert, or tflite-runtime) on one float NHWC/flat sample; int8 inputs quantized
    and int8 outputs dequantized with the model's own parameters."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise EdgeqError("--tflite needs ai-edge-litert (or tflite-runtime) installed") from None
    try:
        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgeqError(f"{path}: LiteRT cannot load it ({e})") from None
    d_in, d_out = it.get_input_details()[0], it.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        x = x.reshape(d_in["shape"])
        if d_in["dtype"] == np.int8:
            s, z = d_in["quantization"]
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        it.set_tensor(d_in["index"], x.astype(d_in["dtype"]))
        it.invoke()
        out = it.get_tensor(d_out["index"])
        if d_out["dtype"] == np.int8:
            s, z = d_out["quantization"]
            out = (out.astype(np.float32) - z) * s
        return out

    return run, [int(v) for v in d_in["shape"]]


def compare(model: Path, calib: Path, formats: list[str], tflite: Path | None, runs: int, warmup: int,
            threads: int, progress=None) -> dict:
    """Rows of (runtime, variant, size, p50 ms measured, accuracy) for the digits-style .npz data."""
    from edgeq.blob import write_blob
    from edgeq.cli_pack import calibration_data, load_model
    from edgeq.graph import Graph
    from edgeq.importers.float_graph import run_float
    from edgeq.packer import Recipe, pack
    from edgeq.runtime import Session

    step = progress or (lambda s: None)
    if model.suffix != ".pt2":
        raise EdgeqError(f"{model}: compare takes the float torch.export program (.pt2); give a .tflite with --tflite")
    fg = load_model(model)
    assert not isinstance(fg, Graph)
    x, x_test, y_test = calibration_data(calib, fg, model)
    if x_test is None or y_test is None:
        raise EdgeqError(f"{calib}: needs x_test and y_test to measure accuracy")
    data = np.load(calib)
    x_torch = np.asarray(data["x_test"], np.float32)  # the program's own layout (NCHW or flat)
    rows = [{"runtime": "float reference", "variant": "fp32 (numpy)", "bytes": None, "latency": None,
             "accuracy": float(np.mean(run_float(fg, x_test).reshape(len(x_test), -1).argmax(1) == y_test))}]
    with tempfile.TemporaryDirectory(prefix="edgeq-compare-") as tmp:
        for fmt in formats:
            step(f"edgeq {fmt}")
            blob = Path(tmp) / f"{fmt}.edgeq"
            size = write_blob(pack(fg, x, Recipe(fmt)), blob)
            s = Session(blob, threads=threads, max_batch=64)
            run = lambda v, s=s: s.run([v])[0]
            rows.append({"runtime": "edgeq (C runtime)", "variant": fmt, "bytes": size,
                         "latency": _timed(run, x_test[:1], runs, warmup),
                         "accuracy": _accuracy(run, x_test, y_test, batched=True)})
        try:
            from edgeq.executorch_interop import PteRunner, export_pte, require_executorch

            require_executorch()
            have_et = True
        except EdgeqError as e:
            have_et, et_error = False, str(e)
        for quant in ("fp32", "8da4w") if have_et else ():
            step(f"ExecuTorch {quant}")
            pte = Path(tmp) / f"{quant}.pte"
            size = export_pte(model, pte, quant)
            runner = PteRunner(pte, threads)
            rows.append({"runtime": "ExecuTorch (XNNPACK)", "variant": quant, "bytes": size,
                         "latency": _timed(runner, x_torch[:1], runs, warmup),
                         "accuracy": _accuracy(runner, x_torch, y_test, batched=False)})
        if tflite is not None:
            step("LiteRT")
            run, shape = _litert(tflite, threads)
            if int(np.prod(shape[1:])) != int(np.prod(x_test.shape[1:])):
                raise EdgeqError(f"{tflite}: input {shape} does not take the data's {list(x_test.shape[1:])} samples")
            rows.append({"runtime": "LiteRT", "variant": tflite.name, "bytes": tflite.stat().st_size,
                         "latency": _timed(run, x_test[:1], runs, warmup),
                         "accuracy": _accuracy(run, x_test, y_test, batched=False)})
    notes = [(f"latency: single-sample calls on this host, {threads} thread(s), p50 of {runs} after {warmup} "
              "warm-up (measured); accuracy on the .npz's x_test (measured)")]
    if not have_et:
        notes.append(f"ExecuTorch skipped: {et_error}")
    return {"model": str(model), "threads": threads, "samples": len(x_test), "rows": rows, "notes": notes}


@click.command("export-pte")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--quant", type=click.Choice(["fp32", "8da4w"]), default="fp32", show_default=True,
              help="8da4w: int8 dynamic activations, int4 per-channel weights (XNNPACK quantizer; linear layers).")
def export_pte_cmd(model: Path, output: Path, quant: str) -> None:
    """Write MODEL (.pt2) as an ExecuTorch .pte lowered to XNNPACK."""
    from edgeq.executorch_interop import export_pte

    size = export_pte(model, output, quant)
    click.echo(f"wrote {output} ({size} bytes, ExecuTorch {quant}, XNNPACK)")


@click.command("compare")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--calib", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help=".npz with x (calibration) and x_test/y_test (accuracy).")
@click.option("-f", "--format", "formats", multiple=True, default=("t2", "i8"), show_default=True,
              help="edgeq weight format(s) to pack (repeatable).")
@click.option("--tflite", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The same model as .tflite, run with LiteRT.")
@click.option("--runs", type=click.IntRange(1, 100000), default=200, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 10000), default=20, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def compare_cmd(model: Path, calib: Path, formats: tuple[str, ...], tflite: Path | None, runs: int, warmup: int,
                threads: int, as_json: bool) -> None:
    """Run MODEL in edgeq, ExecuTorch and (with --tflite) LiteRT on this host: latency and accuracy side by side."""
    from edgeq.formats import FORMATS

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise EdgeqError(f"unknown format(s) {', '.join(bad)} (formats: {', '.join(FORMATS)})")
    err = Console(stderr=True)
    with err.status("comparing") as status:
        result = compare(model, calib, list(formats), tflite, runs, warmup, threads,
                         progress=lambda s: status.update(s))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"{model.name}: {result['samples']} test samples, {threads} thread(s), this host")
    for col in ("runtime", "variant", "file bytes", "p50 ms (measured)", "p90 ms", "accuracy (measured)"):
        table.add_column(col, justify="left" if col in ("runtime", "variant") else "right")
    for r in result["rows"]:
        lat = r["latency"]
        table.add_row(r["runtime"], r["variant"], "–" if r["bytes"] is None else f"{r['bytes']:,}",
                      "–" if lat is None else f"{lat['p50_ms']:.4f}", "–" if lat is None else f"{lat['p90_ms']:.4f}",
                      f"{100 * r['accuracy']:.2f}%")
    console = Console(highlight=False)
    console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}")
