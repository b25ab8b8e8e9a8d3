"""Activation quantization: int8 absmax per row/token (dynamic, BitNet b1.58) and static
per-tensor asymmetric int8 from calibration data (TFLite, MCU deployments)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edgeq.errors import EdgeqError

EPS = 1e-5  # BitNet's clamp on the activation absmax


def quantize_absmax_rows(x) -> tuple[np.ndarray, np.ndarray]:
    """Per row (last axis) s = max(absmax, eps) / 127, q = clip(rint(x * fp32(1/s)), -127, 127).

    Returns (q int8 shaped like x, s float32 shaped x.shape[:-1]); q * s approximates x. The
    multiply by fp32(1/s) is the QUANTIZE op's arithmetic (docs/numerics.md).
    """
    x = np.asarray(x, np.float32)
    scale = np.maximum(np.abs(x).max(axis=-1), np.float32(EPS)) / np.float32(127)
    inv = (np.float32(1) / scale)[..., None]
    q = np.clip(np.rint(x * inv), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _round_half_away(v: float) -> int:
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


def asymmetric_qparams(lo: float, hi: float, qmin: int = -128, qmax: int = 127) -> tuple[float, int]:
    """TFLite's asymmetric (scale, zero point) for the real range [lo, hi], widened to contain 0.

    The zero point comes from whichever end gives the smaller rounding error (TFLite's
    GetAsymmetricQuantizationParams). A range that is the single point 0 gets scale 1.0 (TFLite
    writes 0, which QUANTIZE could not divide by).
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise EdgeqError(f"activation range [{lo}, {hi}] is not finite")
    if lo == hi:
        return 1.0, 0
    scale = (hi - lo) / (qmax - qmin)
    from_min, from_max = qmin - lo / scale, qmax - hi / scale
    zp = from_min if abs(qmin) + abs(lo / scale) < abs(qmax) + abs(hi / scale) else from_max
    zp = qmin if zp < qmin else qmax if zp > qmax else _round_half_away(zp)
    return float(np.float32(scale)), int(zp)


def calibrate_minmax(arrays: np.ndarray | Iterable[np.ndarray], percentile: float | None = None
                     ) -> tuple[float, int]:
    """Static per-tensor int8 (scale, zero point) over calibration batches.

    min/max by default; with `percentile` (e.g. 99.99) the range is [P(100-p), P(p)] of all values,
    clipping outliers.
    """
    batches = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
    if not batches or all(np.size(b) == 0 for b in batches):
        raise EdgeqError("calibration needs at least one non-empty array")
    if percentile is None:
        lo = min(float(np.min(b)) for b in batches if np.size(b))
        hi = max(float(np.max(b)) for b in batches if np.size(b))
    else:
        if not 50 < percentile <= 100:
            raise EdgeqError(f"percentile must be in (50, 100], got {percentile}")
        flat = np.concatenate([np.asarray(b, np.float32).ravel() for b in batches])
        lo, hi = (float(v) for v in np.percentile(flat, [100 - percentile, percentile]))
    return asymmetric_qparams(lo, hi)
