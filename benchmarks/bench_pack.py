#!/usr/bin/env python3
"""Quantize+pack throughput of every weight format, one core, float32 input.

    .venv/bin/python benchmarks/bench_pack.py [--shapes 4096x4096,8192x8192] [--runs 5] [--json out.json]

Times `edgeq.quant.quantize_weight(W, fmt)` (float32 [rows, cols] -> PackedTensor, edgeq's default
recipe per format) and prints the median of --runs runs after one warm-up. The goal is >= 200 M
weights/s for t2 and q4. Not part of `make test`.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its BLAS

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edgeq.formats import FORMATS
from edgeq.quant import quantize_weight

GOAL_MWPS = {"t2": 200.0, "q4": 200.0}


def _shape(text: str) -> tuple[int, int]:
    rows, cols = text.lower().split("x")
    return int(rows), int(cols)


def bench(w: np.ndarray, fmt: str, runs: int) -> dict:
    quantize_weight(w, fmt)  # warm-up: page in the input, allocator, caches
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        packed = quantize_weight(w, fmt)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"format": fmt, "shape": list(w.shape), "runs": runs, "median_s": median, "min_s": min(times),
            "max_s": max(times), "mweights_per_s": w.size / median / 1e6,
            "bits_per_weight": packed.bits_per_weight, "source": "measured"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="4096x4096,8192x8192", help="comma-separated ROWSxCOLS")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated format names")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()
    formats = args.formats.split(",")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        ap.error(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")

    console = Console()
    load_before = os.getloadavg()
    results = []
    rng = np.random.default_rng(0)
    for shape in (_shape(s) for s in args.shapes.split(",")):
        w = rng.standard_normal(shape, dtype=np.float32)
        for fmt in formats:
            with console.status(f"{fmt} {shape[0]}x{shape[1]}"):
                results.append(bench(w, fmt, args.runs))
        del w

    table = Table(title=f"quantize + pack, float32 input, 1 thread, median of {args.runs} runs")
    for col in ("format", "shape", "M weights/s", "median ms", "min-max ms", "bpw", "goal"):
        table.add_column(col, justify="left" if col in ("format", "shape") else "right")
    for r in results:
        goal = GOAL_MWPS.get(r["format"])
        verdict = "" if goal is None else (f"[green]>= {goal:.0f}[/]" if r["mweights_per_s"] >= goal
                                           else f"[red]< {goal:.0f}[/]")
        table.add_row(r["format"], "x".join(map(str, r["shape"])), f"{r['mweights_per_s']:.0f}",
                      f"{r['median_s'] * 1e3:.1f}", f"{r['min_s'] * 1e3:.1f}..{r['max_s'] * 1e3:.1f}",
                      f"{r['bits_per_weight']:.4f}", verdict)
    console.print(table)
    load_after = os.getloadavg()
    console.print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__}; "
                  f"1-min load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
                  "(other processes share the cores: numbers are lower bounds)")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "quantize+pack", "threads": 1, "numpy": np.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_average": [load_before[0], load_after[0]],
            "goal_mweights_per_s": GOAL_MWPS, "results": results}, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
