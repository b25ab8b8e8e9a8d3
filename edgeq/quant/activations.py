"""Activation quantization: int8 absmax per row (dynamic) and static per-tensor from calibration."""

from __future__ import annotations

import numpy as np


def quantize_absmax_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BitNet style: per row scale = absmax/127, q = round(x/scale). Returns (q int8, scale fp32)."""
    x = np.asarray(x, np.float32)
    scale = np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-8).astype(np.float32) / np.float32(127)
    q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
    return q, scale[..., 0]


def calibrate_minmax(arrays, percentile: float | None = None) -> tuple[float, int]:
    """Static asymmetric int8 (scale, zero point) over calibration arrays, TFLite style.

    The range always includes 0; with `percentile` (e.g. 99.99) outliers are clipped.
    """
    flat = np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])
    if percentile is None:
        lo, hi = float(flat.min()), float(flat.max())
    else:
        lo, hi = (float(v) for v in np.percentile(flat, [100 - percentile, percentile]))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zero
