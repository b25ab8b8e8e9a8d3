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
    """A .npy batch (NCHW or NHWC), or an image / directory of images preprocessed as the blob records."""
    from edgeq.cli_pack import to_nhwc
    from edgeq.preprocess import image_files, load_images

    if path.suffix != ".npy":
        return load_images(image_files(path), session.graph.metadata, str(session.path))
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


def _run_text(s, texts: tuple[str, ...], as_json: bool) -> None:
    """Sentence-encoder blobs: the texts through the tokenizer the blob carries; embeddings and their cosines."""
    from edgeq.importers.bert import tokenize_json

    meta = s.graph.metadata
    if "tokenizer_json" not in meta:
        raise EdgeqError(f"{s.path}: --text needs a sentence-encoder blob that carries its tokenizer "
                         "(packed by edgeq.importers.bert)")
    ids, mask = tokenize_json(meta["tokenizer_json"], list(texts), int(meta["seq_len"]))
    emb = s.run([ids, mask])[0].reshape(len(texts), -1)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    if as_json:
        click.echo(json.dumps({"texts": list(texts), "embeddings": emb.tolist(), "cosine": cos.tolist()}))
        return
    for i, text in enumerate(texts):
        click.echo(f"[{i}] {text!r}: {' '.join(f'{v:.4f}' for v in emb[i, :8])} ... ({emb.shape[1]} values)")
    if len(texts) > 1:
        click.echo("cosine similarity:")
        for i in range(len(texts)):
            click.echo(f"[{i}] " + " ".join(f"{c:6.3f}" for c in cos[i]))


@click.command()
@click.argument("blob", type=click.Path(path_type=Path))
@click.option("--input", "input_paths", type=click.Path(path_type=Path), multiple=True,
              help=".npy batch (NCHW or NHWC), an image (PNG/JPEG/...) or a directory of images; repeatable.")
@click.option("--text", "texts", multiple=True, help="A sentence for an encoder blob (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def run(blob: Path, input_paths: tuple[Path, ...], texts: tuple[str, ...], as_json: bool) -> None:
    """Run BLOB on this host's C runtime: outputs and top-1 class per input, or sentence embeddings (--text)."""
    from edgeq.preprocess import image_files
    from edgeq.runtime import Session

    if bool(input_paths) == bool(texts):
        raise EdgeqError("give --input FILE(s) or --text SENTENCE(s)")
    s = Session(blob, max_batch=max(len(texts), 1))
    if texts:
        _run_text(s, texts, as_json)
        return
    batches, names = [], []
    for path in input_paths:
        x = _inputs(s, path)
        batches.append(x)
        files = image_files(path) if path.suffix != ".npy" else []
        names += [str(f) for f in files] or [f"{path}[{i}]" for i in range(len(x))]
    out = s.run([np.concatenate(batches)])[0]
    result = {"inputs": names, "outputs": out.tolist(), "top1": out.reshape(len(out), -1).argmax(1).tolist()}
    if as_json:
        click.echo(json.dumps(result))
        return
    for name, row, cls in zip(names, out.reshape(len(out), -1), result["top1"]):
        click.echo(f"{name}: class {cls}  " + " ".join(f"{v:.4g}" for v in row[:10]))


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
