"""Weight quantizers: ternary absmean (BitNet b1.58), binary sign+alpha, int4 group-wise, int8."""

from __future__ import annotations

import numpy as np

from edgeq.formats import FORMATS, ids
from edgeq.formats.packed import PackedTensor

EPS = np.float32(1e-8)


def _rows(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, np.float32)
    return w.reshape(w.shape[0], -1)


def ternary_absmean(w: np.ndarray, fmt: str = "t2", per: str = "tensor") -> PackedTensor:
    """BitNet b1.58: scale = mean|W| (per tensor or row), values = clip(round(W/scale), -1, 1)."""
    w = _rows(w)
    a = np.abs(w)
    if per == "tensor":
        scale = np.full(w.shape[0], max(a.mean(dtype=np.float64), EPS), np.float32)
    elif per == "row":
        scale = np.maximum(a.mean(axis=1, dtype=np.float64), EPS).astype(np.float32)
    else:
        raise ValueError(f"per must be 'tensor' or 'row', got {per!r}")
    values = np.clip(np.rint(w * (1 / scale)[:, None]), -1, 1).astype(np.int8)
    return FORMATS[fmt].pack(values, scale, ids.SCALE_ROW)


def binary_sign(w: np.ndarray) -> PackedTensor:
    """sign(W) (0 -> +1) with alpha = mean|W| per output row."""
    w = _rows(w)
    alpha = np.maximum(np.abs(w).mean(axis=1, dtype=np.float64), EPS).astype(np.float32)
    return FORMATS["b1"].pack(np.where(w < 0, -1, 1).astype(np.int8), alpha)


def int4_groupwise(w: np.ndarray, group: int = 32, asymmetric: bool = False) -> PackedTensor:
    """Symmetric: d = absmax/7 per group, q in [-8, 7]. Asymmetric: d = (max-min)/15, zero point z."""
    w = _rows(w)
    rows, cols = w.shape
    nb = -(-cols // group)
    padded = np.zeros((rows, nb * group), np.float32)
    padded[:, :cols] = w
    g = padded.reshape(rows, nb, group)
    if not asymmetric:
        d = (np.abs(g).max(axis=2) / 7).astype(np.float16)
        inv = np.where(d > 0, 1 / d.astype(np.float32), 0).astype(np.float32)
        q = np.clip(np.rint(g * inv[:, :, None]), -8, 7).astype(np.int8).reshape(rows, -1)
        return FORMATS["q4"].pack(q[:, :cols], d, block=group)
    lo = np.minimum(g.min(axis=2), 0)
    hi = np.maximum(g.max(axis=2), 0)
    d = ((hi - lo) / 15).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.where(d32 > 0, 1 / d32, 0).astype(np.float32)
    z = np.clip(np.rint(-lo * inv), 0, 15).astype(np.uint8)
    u = np.clip(np.rint(g * inv[:, :, None]) + z[:, :, None], 0, 15).astype(np.uint8).reshape(rows, -1)
    return FORMATS["q4"].pack_asymmetric(u[:, :cols], d, z, block=group)


def int8_per_channel(w: np.ndarray) -> PackedTensor:
    """Symmetric int8 per output row: scale = absmax/127."""
    w = _rows(w)
    scale = np.maximum(np.abs(w).max(axis=1) / 127, EPS).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return FORMATS["i8"].pack(q, scale)


def quantize_weight(w: np.ndarray, fmt: str, group: int = 32, asymmetric: bool = False) -> PackedTensor:
    """One entry for the packer: W [rows, ...] -> PackedTensor in format `fmt`."""
    if fmt in ("t2", "t158"):
        return ternary_absmean(w, fmt)
    if fmt == "b1":
        return binary_sign(w)
    if fmt == "q4":
        return int4_groupwise(w, group, asymmetric)
    if fmt == "i8":
        return int8_per_channel(w)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
