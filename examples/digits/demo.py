"""Packs the digits models to every format and prints size and host-reference accuracy vs fp32.

`make demo` runs this. Models come pre-trained from examples/digits/models/ (see train.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq import reference
from edgeq.blob import read_blob, write_blob
from edgeq.cli_pack import to_nhwc
from edgeq.importers.float_graph import run_float
from edgeq.importers.torch_export import from_pt2
from edgeq.packer import Recipe, pack

MODELS = Path(__file__).parent / "models"
FORMATS = ["t2", "t158", "b1", "q4", "i8"]


def variants() -> list[tuple[str, str, str, Recipe]]:
    """(model kind, model file stem, label, recipe) for every row of the table."""
    rows = []
    for kind in ("mlp", "cnn"):
        for fmt in FORMATS:
            rows.append((kind, f"{kind}_fp32", f"{fmt} (PTQ)", Recipe(fmt)))
            if fmt == "b1":  # binary networks keep first and last layers int8
                rows.append((kind, f"{kind}_b1_qat", "b1 (QAT, i8 ends)", Recipe(fmt, first_last_i8=True)))
            else:
                rows.append((kind, f"{kind}_{fmt}_qat", f"{fmt} (QAT)", Recipe(fmt)))
    rows.append(("bnn", "bnn_b1_qat", "b1 weights+acts, i8 ends", Recipe("b1", first_last_i8=True)))
    return rows


def evaluate(kind: str, stem: str, recipe: Recipe, workdir: Path) -> dict:
    data = np.load(MODELS / f"{kind}_data.npz")
    fg = from_pt2(MODELS / f"{stem}.pt2")
    x = to_nhwc(data["x"], fg.input_shape)
    x_test, y_test = to_nhwc(data["x_test"], fg.input_shape), data["y_test"]
    graph = pack(fg, x, recipe, tests=x_test[:32], labels=y_test[:32])
    path = workdir / f"{stem}_{recipe.format}.edgeq"
    size = write_blob(graph, path)
    blob = read_blob(path)
    q_pred = reference.run(blob.graph, [x_test])[0].argmax(1)
    baseline = from_pt2(MODELS / f"{kind}_fp32.pt2") if kind != "bnn" else fg
    f_pred = run_float(baseline, x_test).argmax(1)
    weights = sum(t.packed.nbytes for t in blob.graph.tensors if t.packed is not None)
    fp32 = sum(4 * t.shape[0] * t.shape[1] for t in blob.graph.tensors if t.packed is not None)
    return {"bytes": size, "compression": fp32 / weights, "acc": float((q_pred == y_test).mean()),
            "fp32_acc": float((f_pred == y_test).mean())}


def main() -> int:
    table = Table(title="digits (sklearn load_digits, 360 held-out images): host reference executor")
    for col in ("model", "format", "blob bytes", "fp32/weights", "accuracy", "fp32 accuracy", "delta (points)"):
        table.add_column(col, justify="left" if col in ("model", "format") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, stem, label, recipe in variants():
            r = evaluate(kind, stem, recipe, Path(tmp))
            table.add_row(kind, label, str(r["bytes"]), f"{r['compression']:.1f}x", f"{100 * r['acc']:.2f}%",
                          f"{100 * r['fp32_acc']:.2f}%", f"{100 * (r['acc'] - r['fp32_acc']):+.2f}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
