"""Joulescope (JS110/JS220) on the host's USB, through the `joulescope` package (imported only when used).

The package's documented call is `device.read(contiguous_duration=s)`, an N x 2 float array of
(current A, voltage V) covering the last `s` seconds. A background thread reads back-to-back chunks
between `start()` and `stop()`, stamps them with this process's monotonic clock (so the run loop's
window can be cut out) and averages them to 1 kHz to keep the trace small.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.runner.energy import Meter, Trace

OUTPUT_HZ = 1000


def open_joulescope() -> Any:
    """The one connected Joulescope, opened; a clear error when the package or the instrument is missing."""
    try:
        import joulescope
    except ImportError:
        raise EdgeqError("the joulescope meter needs the 'joulescope' package: pip install joulescope") from None
    try:
        device = joulescope.scan_require_one(config="auto")
        device.open()
    except (RuntimeError, ValueError, OSError) as e:  # how the package says "none found" / "more than one"
        raise EdgeqError(f"joulescope: {e}") from None
    return device


def chunk_trace(data: np.ndarray, t_end: float, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, watts) of one chunk read, power = current x voltage per raw sample, then block means."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise EdgeqError(f"joulescope: expected an N x 2 (current, voltage) array, got shape {data.shape}")
    watts = data[:, 0] * data[:, 1]
    k = max(1, len(watts) // max(1, int(duration_s * OUTPUT_HZ)))
    watts = watts[: len(watts) // k * k].reshape(-1, k).mean(axis=1)
    step = duration_s / len(watts)
    return t_end - duration_s + (np.arange(len(watts)) + 0.5) * step, watts


class JoulescopeMeter(Meter):
    """`device` is an opened Joulescope (anything with the package's `read(contiguous_duration=)`)."""

    name = "joulescope"
    host_clock = True

    def __init__(self, device: Any = None, chunk_s: float = 0.25):
        self.device = device if device is not None else open_joulescope()
        self.chunk_s = chunk_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._error: BaseException | None = None

    @property
    def period_s(self) -> float:
        return 1 / OUTPUT_HZ

    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.device.read(contiguous_duration=self.chunk_s)
                t, w = chunk_trace(data, time.monotonic(), self.chunk_s)
                if self._chunks:  # a read returning early re-covers time the previous chunk already holds
                    new = t > self._chunks[-1][0][-1]
                    t, w = t[new], w[new]
                self._chunks.append((t, w))
        except Exception as e:  # noqa: BLE001 -- handed to stop(), raised on the caller's thread
            self._error = e

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("joulescope meter already started")
        self._stop.clear()
        self._chunks, self._error = [], None
        self._thread = threading.Thread(target=self._reader, name="edgeq-joulescope", daemon=True)
        self._thread.start()

    def stop(self) -> Trace:
        if self._thread is None:
            raise RuntimeError("joulescope meter not started")
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise EdgeqError(f"joulescope: read failed: {self._error}")
        chunks = self._chunks or [(np.empty(0), np.empty(0))]
        return Trace(np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]))

    def close(self) -> None:
        close = getattr(self.device, "close", None)
        if close is not None:
            close()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "reads": "Joulescope current x voltage at the supply input",
                "period_s": self.period_s, "chunk_s": self.chunk_s}
