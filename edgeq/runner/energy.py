"""Energy per inference: a small meter interface, the measurement protocol, and the modelled fallback.

Protocol (docs/energy.md): an idle baseline first, then a run loop long enough for the meter to take
at least MIN_SAMPLES samples, then

    energy per inference = (mean active power - idle power) x loop time / inferences

with mean powers taken from the traces by the trapezoidal rule over the real timestamps. Without a
meter, `ModelledEnergy` gives (load_w - idle_w) x latency from the target's [power] figures, labelled
"modelled" and carrying those figures' sources. Meter back-ends live in edgeq.runner.meters.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.report.model import Energy
from edgeq.targets.registry import Target

MIN_SAMPLES = 20  # fewer samples than this inside the run loop and the mean is mostly meter noise


@dataclass(frozen=True)
class Trace:
    """Power samples: `t` in seconds (strictly increasing, any origin), `w` in watts."""

    t: np.ndarray
    w: np.ndarray

    def __post_init__(self) -> None:
        t, w = np.asarray(self.t, dtype=np.float64), np.asarray(self.w, dtype=np.float64)
        if t.ndim != 1 or t.shape != w.shape:
            raise ValueError(f"trace: t and w must be 1-D and equally long, got {t.shape} and {w.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(w))):
            raise ValueError("trace: samples must be finite")
        if np.any(np.diff(t) <= 0):
            raise ValueError("trace: timestamps must be strictly increasing")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "w", w)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0]) if len(self) else 0.0

    def energy_j(self) -> float:
        """Trapezoidal integral over the real timestamps: uneven sampling (SSH jitter) is weighted right."""
        return float(np.sum((self.w[1:] + self.w[:-1]) * np.diff(self.t)) / 2)

    def mean_w(self) -> float:
        """Time-weighted mean power (a plain average would over-weight bursts of closely spaced samples)."""
        if len(self) == 0:
            raise ValueError("trace: no samples")
        return self.energy_j() / self.duration_s if len(self) > 1 else float(self.w[0])

    def clip(self, t0: float, t1: float) -> Trace:
        keep = (self.t >= t0) & (self.t <= t1)
        return Trace(self.t[keep], self.w[keep])

    def period_s(self) -> float:
        """Median spacing of the samples."""
        return float(np.median(np.diff(self.t))) if len(self) > 1 else math.inf


class Meter(ABC):
    """A power meter. `start()`/`stop()` bracket a run loop; `sample(d)` records `d` seconds of idle.

    `period_s` is the typical time between samples, used to size the run loop. `host_clock` says the
    trace's timestamps are `time.monotonic()` of this process, so it can be clipped to the loop.
    """

    name: ClassVar[str]
    host_clock: ClassVar[bool] = False

    @property
    @abstractmethod
    def period_s(self) -> float: ...

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> Trace: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the report says about the meter: name, rail or point it measures, sample period."""

    def sample(self, duration_s: float) -> Trace:
        self.start()
        time.sleep(duration_s)
        return self.stop()

    def close(self) -> None:
        """Releases the instrument; a no-op for meters that hold nothing open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def loop_inferences(latency_s: float, meter: Meter, min_samples: int = MIN_SAMPLES, min_loop_s: float = 1.0) -> int:
    """How many inferences make a loop long enough for `min_samples` samples (with 25 % slack for jitter)."""
    if latency_s <= 0:
        raise ValueError(f"latency must be > 0, got {latency_s}")
    loop_s = max(min_loop_s, 1.25 * min_samples * meter.period_s)
    return max(1, math.ceil(loop_s / latency_s))


def energy_from_traces(idle: Trace, active: Trace, inferences: int, loop_s: float, meter: dict[str, Any],
                       min_samples: int = MIN_SAMPLES) -> Energy:
    """The protocol's arithmetic: (mean active - idle) x loop time / inferences, and the figure with idle."""
    if inferences < 1 or not loop_s > 0:
        raise EdgeqError(f"energy: need inferences >= 1 and a loop time > 0 (got {inferences}, {loop_s} s)")
    if len(idle) < 2:
        raise EdgeqError(f"energy: the idle baseline has {len(idle)} sample(s); lengthen it")
    if len(active) < min_samples:
        period = active.period_s() if len(active) > 1 else meter.get("period_s", math.nan)
        raise EdgeqError(f"energy: the run loop ({loop_s:.3g} s) gave {len(active)} meter samples, need >= "
                         f"{min_samples}; run >= {min_samples * period:.3g} s of inferences")
    idle_w, active_w = idle.mean_w(), active.mean_w()
    above = (active_w - idle_w) * loop_s / inferences
    basis = {"meter": meter, "idle_w": idle_w, "idle_s": idle.duration_s, "idle_samples": len(idle),
             "active_w": active_w, "active_s": active.duration_s, "active_samples": len(active),
             "loop_s": loop_s, "inferences": inferences,
             "formula": "(active_w - idle_w) x loop_s / inferences"}
    if active_w <= idle_w:
        basis["warning"] = "active power within the idle baseline's noise: the inference cost is below what it resolves"
    return Energy(source="measured", method=meter["name"], per_inference_j=above,
                  total_per_inference_j=active_w * loop_s / inferences, basis=basis)


def measure_energy(meter: Meter, run_loop: Callable[[], tuple[int, float]], *, idle_s: float | None = None,
                   min_samples: int = MIN_SAMPLES) -> Energy:
    """Idle baseline, then `run_loop()` (returning inferences done and the loop's own seconds) under the meter.

    Meters on the host clock are clipped to the loop's window; device-side meters cannot be, and their
    trace includes one command round trip of idle on each side (docs/energy.md: a small bias towards idle).
    """
    idle = meter.sample(idle_s if idle_s is not None else max(1.0, 1.25 * min_samples * meter.period_s))
    meter.start()
    t0 = time.monotonic()
    try:
        inferences, loop_s = run_loop()
    except BaseException:
        with contextlib.suppress(Exception):  # the loop's failure is the one to report
            meter.stop()
        raise
    t1 = time.monotonic()
    active = meter.stop()
    if meter.host_clock:
        active = active.clip(t0, t1)
    return energy_from_traces(idle, active, inferences, loop_s, meter.describe(), min_samples)


class ModelledEnergy:
    """No meter: the target's [power] figures x latency on the real board. Never measured, and says so."""

    def __init__(self, target: Target):
        power = target.section("power")
        if not power:
            raise EdgeqError(f"target {target.id} has no [power] section: no modelled energy")
        self.target = target.id
        self.idle_w, self.load_w, self.power_source = float(power["idle_w"]), float(power["load_w"]), power["source"]

    def describe(self) -> dict[str, Any]:
        return {"name": "modelled", "target": self.target, "idle_w": self.idle_w, "load_w": self.load_w,
                "source": self.power_source}

    def energy(self, latency_ms: float, latency_source: str, latency_method: str = "") -> Energy:
        """Latency must be the real board's (modelled or measured): qemu's wall time is not, so it is refused."""
        if latency_source not in ("modelled", "measured"):
            raise ValueError(f"modelled energy needs the board's latency (modelled or measured), not {latency_source}")
        if not latency_ms > 0:
            raise ValueError(f"latency must be > 0 ms, got {latency_ms}")
        s = latency_ms / 1e3
        basis = {"target": self.target, "idle_w": self.idle_w, "load_w": self.load_w,
                 "power_source": self.power_source, "latency_ms": latency_ms, "latency_source": latency_source,
                 "latency_method": latency_method, "formula": "(load_w - idle_w) x latency"}
        return Energy(source="modelled", method="power x latency", per_inference_j=(self.load_w - self.idle_w) * s,
                      total_per_inference_j=self.load_w * s, basis=basis)


def read_trace_csv(path: str | Path) -> dict[str, Trace]:
    """Segments of a recorded trace file: CSV with header `t_s,watts[,segment]`, '#' lines are comments."""
    path = Path(path)
    rows: dict[str, list[tuple[float, float]]] = {}
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as e:
        raise EdgeqError(f"{path}: cannot read trace ({e.strerror or e})") from None
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or not {"t_s", "watts"} <= set(reader.fieldnames):
        raise EdgeqError(f"{path}: a trace needs a header with t_s and watts")
    for n, row in enumerate(reader, start=2):
        try:
            rows.setdefault(row.get("segment") or "all", []).append((float(row["t_s"]), float(row["watts"])))
        except (TypeError, ValueError):
            raise EdgeqError(f"{path}: line {n}: not a number") from None
    try:
        return {name: Trace(np.array([r[0] for r in rs]), np.array([r[1] for r in rs])) for name, rs in rows.items()}
    except ValueError as e:
        raise EdgeqError(f"{path}: {e}") from None


class ReplayMeter(Meter):
    """Plays a recorded trace file back, one segment per `sample()` / `stop()`, in file order.

    For tests and demos that exercise the measurement path without an instrument: the numbers are
    whatever was recorded, so `describe()` names the file and reports that it is a replay.
    """

    name = "replay"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.segments = list(read_trace_csv(self.path).items())
        self._next = 0

    @property
    def period_s(self) -> float:
        return min(trace.period_s() for _, trace in self.segments)

    def start(self) -> None:
        """Nothing to start: the samples were taken when the file was recorded."""

    def stop(self) -> Trace:
        if self._next >= len(self.segments):
            raise EdgeqError(f"{self.path}: replay has no segment left ({len(self.segments)} recorded)")
        self._next += 1
        return self.segments[self._next - 1][1]

    def sample(self, duration_s: float) -> Trace:
        return self.stop()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "file": str(self.path), "period_s": self.period_s,
                "segments": [name for name, _ in self.segments]}
