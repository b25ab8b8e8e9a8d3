#!/usr/bin/env python3
"""Detection and false-alarm rates of `edgeq check-divergence` over training seeds.

    .venv/bin/python benchmarks/divergence_seeds.py [--seeds 5] [--json out.json]

For each seed, trains three digits MLPs with examples/backdoor/attack.py -- a trigger backdoor, a
class backdoor and the clean control (same seed, no poisoning) -- packs each to q4 and runs the
guard on the clean held-out digits only. Detection rate = backdoored models flagged; false-alarm
rate = clean models flagged. About 15 s per model on one core. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "backdoor"))
from attack import build

from edgeq.blob import read_blob
from edgeq.cli_divergence import load_data
from edgeq.divergence import check
from edgeq.importers.torch_export import from_pt2

KINDS = {"trigger": "trigger", "class": "class", "clean": None}


def one(seed: int, kind: str, workdir: Path) -> dict:
    r = build(seed, workdir / f"{kind}-{seed}", KINDS[kind])
    fg = from_pt2(r["model"])
    x, y = load_data(Path(r["data"]), fg.input_shape)
    res = check(fg, read_blob(r["blob"]).graph, x, y)
    ratios = [lay.noise_ratio for lay in res.layers]
    return {"seed": seed, "kind": kind, "float_acc": r["float_acc"], "quant_acc": r["quant_acc"],
            "attack_success": r["attack_success"], "flagged": res.flagged, "max_noise_ratio": max(ratios),
            "classes_flagged": [c.label for c in res.classes if c.flagged], "inputs_flagged": len(res.flagged_inputs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for kind in KINDS:
                rows.append(one(seed, kind, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    table = Table(title=f"check-divergence over {args.seeds} seeds (q4, digits MLP, clean test data only)")
    for col in ("model", "flagged", "attack success (mean)", "float acc (mean)", "quant acc (mean)",
                "max noise ratio (range)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    summary = {}
    for kind in KINDS:
        got = [r for r in rows if r["kind"] == kind]
        flagged = sum(r["flagged"] for r in got)
        ratios = [r["max_noise_ratio"] for r in got]
        summary[kind] = {"models": len(got), "flagged": flagged}
        table.add_row(kind, f"{flagged}/{len(got)}", f"{100 * np.mean([r['attack_success'] for r in got]):.1f}%",
                      f"{100 * np.mean([r['float_acc'] for r in got]):.1f}%",
                      f"{100 * np.mean([r['quant_acc'] for r in got]):.1f}%", f"{min(ratios):.2f}-{max(ratios):.2f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
