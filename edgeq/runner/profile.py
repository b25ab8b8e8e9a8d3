"""Latency statistics over timed runs, per-layer aggregation, and modelled figures set beside them.

Every figure leaves this module with a `"source"`: *measured* on the real board, *emulated* (wall time or
instruction count under qemu — says nothing exact about the real chip), or *modelled* (the target's
latency model). A report never shows a number without saying which of the three it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeq.targets import latency as model
from edgeq.targets.registry import Target

SOURCES = ("measured", "emulated", "modelled")

# One layer of one run, as the runtime's timing hooks report it: (op index, op name, kernel name, seconds).
LayerTiming = tuple[int, str, str, float]


def check_source(source: str) -> str:
    """Rejects any label but the three, so a typo cannot pass an emulated figure off as measured."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    return source


def _check_seconds(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: need at least one timing")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"{what}: timings must be finite and >= 0")
    return x


def latency_stats(samples_s: Sequence[float], source: str) -> dict[str, Any]:
    """Distribution of N timed runs (after warm-up) in ms: the spread matters as much as the best run.

    Percentiles interpolate linearly between order statistics (numpy's default); `std_ms` is the
    sample standard deviation (ddof=1), 0 for a single run. `samples_ms` keeps every run for histograms.
    """
    check_source(source)
    ms = _check_seconds(samples_s, "latency") * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "source": source, "n": int(ms.size),
        "mean_ms": float(ms.mean()), "std_ms": float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        "min_ms": float(ms.min()), "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
        "max_ms": float(ms.max()), "samples_ms": [float(v) for v in ms],
    }


def layer_stats(runs: Sequence[Sequence[LayerTiming]], source: str) -> dict[str, Any]:
    """Per-layer median over runs and its share of the summed medians (where the time goes).

    Every run must report the same layers with the same op and kernel names: a run that differs
    means the timing hooks and the graph disagree, and averaging across them would hide it.
    """
    check_source(source)
    if not runs:
        raise ValueError("per-layer timings: no runs")
    layout = [(i, op, kernel) for i, op, kernel, _ in runs[0]]
    if not layout:
        raise ValueError("per-layer timings: the first run has no layers")
    if len({i for i, _, _ in layout}) != len(layout):
        raise ValueError("per-layer timings: an op index appears twice in one run")
    for r, run in enumerate(runs[1:], start=1):
        if [(i, op, kernel) for i, op, kernel, _ in run] != layout:
            raise ValueError(f"per-layer timings: run {r} reports different layers than run 0")
    secs = _check_seconds([t for run in runs for *_, t in run], "per-layer timings").reshape(len(runs), -1)
    medians = np.median(secs, axis=0) * 1e3
    total = float(medians.sum())
    layers = [{"index": i, "op": op, "kernel": kernel, "median_ms": float(m),
               "share": float(m / total) if total > 0 else 0.0, "modelled_ms": None}
              for (i, op, kernel), m in zip(layout, medians, strict=True)]
    return {"source": source, "runs": len(runs), "total_ms": total, "layers": layers}


def modelled_latency(estimate: model.Estimate) -> dict[str, Any]:
    """The roofline model's figure for the real board, to print beside an emulated or measured one."""
    return {"source": "modelled", "method": "roofline", "ms": estimate.total_s * 1e3,
            "basis": {"target": estimate.target, "threads": estimate.threads, **estimate.assumptions}}


def modelled_from_instructions(target: Target, instructions: int, threads: int = 1) -> dict[str, Any]:
    """Real-board time from an instruction count taken under emulation: the count is emulated, the
    conversion (IPC x clock of the board file) is a model, so the result is modelled."""
    if instructions < 0:
        raise ValueError(f"instruction count must be >= 0, got {instructions}")
    lat = target.section("latency")
    return {"source": "modelled", "method": "instructions",
            "ms": model.from_instructions(target, instructions, threads) * 1e3,
            "basis": {"target": target.id, "instructions": int(instructions), "threads": threads,
                      "ipc": lat["ipc"], "freq_mhz": target.cpu["freq_mhz"], "sources": {"latency": lat["source"],
                                                                                         "cpu": target.cpu["source"]}}}


def attach_modelled_layers(table: dict[str, Any], estimate: model.Estimate) -> dict[str, Any]:
    """Fills `modelled_ms` of each row from the model's layer of the same op index, leaving the rest None.

    The model names its layers "<op index>_<op name>" (edgeq.targets.latency.graph_layers); ops the
    model does not time one by one (activations, pooling) stay None rather than getting a guess.
    """
    by_index: dict[int, float] = {}
    for layer in estimate.layers:
        head, _, _ = layer.name.partition("_")
        if head.isdigit():
            by_index[int(head)] = layer.time_s * 1e3
    rows = [{**row, "modelled_ms": by_index.get(row["index"])} for row in table["layers"]]
    return {**table, "layers": rows}


def instruction_count(count: int, tool: str) -> dict[str, Any]:
    """An executed-instruction count from an emulator: deterministic, but *emulated* by definition."""
    if count < 0 or not math.isfinite(count):
        raise ValueError(f"instruction count must be >= 0, got {count}")
    return {"source": "emulated", "count": int(count), "tool": tool}
