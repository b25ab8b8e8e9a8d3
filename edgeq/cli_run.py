"""`edgeq run` and `edgeq bench`: the C runtime on this host, through the Python binding."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq.errors import EdgeqError


def _inputs(session, path: Path) -> np.ndarray:
    from edgeq.cli_pack import to_nhwc

    if path.suffix != ".npy":
        raise EdgeqError(f"{path}: inputs are .npy arrays (batch first)")
    try:
        x = np.load(path)
    except (OSError, ValueError) as e:
        raise EdgeqError(f"{path}: cannot read ({e})") from None
    shape = session.graph.tensors[session.graph.inputs[0]].shape
    x = to_nhwc(x, shape) if len(shape) == 4 else np.asarray(x, np.float32)
    if tuple(x.shape[1:]) != tuple(shape[1:]) and x.size % int(np.prod(shape[1:])) == 0:
        x = x.reshape((-1,) + tuple(shape[1:]))
    if tuple(x.shape[1:]) != tuple(shape[1:]):
        raise EdgeqError(f"{path}: shape {list(x.shape)} does not fit the model input [N, {', '.join(map(str, shape[1:]))}]")
    return x


@click.command()
@click.argument("blob", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help=".npy batch of inputs (NCHW or NHWC).")
@click.option("--json", "as_json", is_flag=True)
def run(blob: Path, input_path: Path, as_json: bool) -> None:
    """Run BLOB on this host's C runtime and print the outputs and top-1 class per input."""
    from edgeq.runtime import Session

    s = Session(blob)
    out = s.run([_inputs(s, input_path)])[0]
    result = {"outputs": out.tolist(), "top1": out.reshape(len(out), -1).argmax(1).tolist()}
    if as_json:
        click.echo(json.dumps(result))
        return
    for i, (row, cls) in enumerate(zip(out.reshape(len(out), -1), result["top1"])):
        click.echo(f"{i}: class {cls}  " + " ".join(f"{v:.4g}" for v in row[:10]))


@click.command()
@click.argument("blob", type=click.Path(path_type=Path))
@click.option("--runs", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 10000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench(blob: Path, runs: int, warmup: int, as_json: bool) -> None:
    """Latency distribution and per-layer times of BLOB on this host (measured)."""
    from edgeq.blob import layout as L
    from edgeq.runner import profile
    from edgeq.runtime import Session

    s = Session(blob)
    g = s.graph
    tests = g.test_tensors(L.TENSOR_TEST_INPUT)
    shape = g.tensors[g.inputs[0]].shape
    x = g.tensors[tests[0]].array[:1] if tests else np.zeros((1,) + tuple(shape[1:]), np.float32)
    for _ in range(warmup):
        s.run([x])
    samples, layers = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run([x])
        samples.append(time.perf_counter() - t0)
        layers.append(s.layer_times)
    result = {"latency": profile.latency_stats(samples, "measured"), "layers": profile.layer_stats(layers, "measured"),
              "arena_bytes": s.arena_size}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lat = result["latency"]
    console = Console()
    console.print(f"{blob.name}: p50 {lat['p50_ms']:.4f} ms  p90 {lat['p90_ms']:.4f}  p99 {lat['p99_ms']:.4f}  "
                  f"mean {lat['mean_ms']:.4f}  min {lat['min_ms']:.4f} ms (measured, {runs} runs); "
                  f"arena {s.arena_size} bytes")
    table = Table(title="per layer (median, measured)")
    for col in ("#", "op", "kernel", "ms", "share"):
        table.add_column(col)
    for row in result["layers"]["layers"]:
        table.add_row(str(row["index"]), row["op"], row["kernel"], f"{row['median_ms']:.4f}", f"{100 * row['share']:.1f}%")
    console.print(table)
