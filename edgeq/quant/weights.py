"""Weight quantizers: float32 [rows, cols] -> PackedTensor, vectorised numpy.

Each quantizer walks the rows in chunks of about 512 KiB of float32 so its temporaries stay in
the L2 cache; within a chunk everything is whole-array numpy (no loops over rows or blocks).

Semantics (the torch fake quantizers in edgeq.quant.qat compute exactly the same values):

- ternary (BitNet b1.58): s = mean|W| over the scale group (float64 sum, eps-guarded), values
  clip(rint(W / s), -1, 1). A group that is already ternary (every nonzero |W| equal) keeps that
  magnitude as s, so quantizing a dequantized tensor is lossless. SCALE_BLOCK stores s as fp16 and
  rounds with the stored value.
- binary: sign(W) with 0 -> +1, alpha = mean|W| per row.
- int4, symmetric: ggml's Q4_0 rule (bit-exact with it): m = the value of largest magnitude in the
  group (first one on ties), d = m / -8, u = min(15, trunc(W * (1/d) + 8.5)), d stored as fp16. All
  16 levels are used. Asymmetric: range [min(W, 0), max(W, 0)], d = range / 15, zero point
  z = clip(rint(-lo * (1/d)), 0, 15), u = clip(rint(W * (1/d)) + z, 0, 15).
- int8: s = absmax / 127 per row, values clip(rint(W / s), -127, 127).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS, PackedTensor, ids
from edgeq.formats.q4 import GROUPS

EPS = 1e-8             # smallest ternary/binary scale (all-zero groups)
FP16_TINY = 2.0 ** -24  # smallest positive fp16: a block scale never rounds to 0
CHUNK = 1 << 17        # float32 elements per chunk
_ONES = np.uint64(0x0101010101010101)  # 1 in every byte of a uint64 lane
PER = ("tensor", "row", "block")


def _as_rows(w) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2 or w.size == 0:
        raise EdgeqError(f"weights must be a non-empty 2-D [rows, cols] array, got shape {list(w.shape)}")
    return np.ascontiguousarray(w, np.float32)


def _chunks(w: np.ndarray, padded_cols: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(r0, r1, rows r0:r1 padded with zeros to padded_cols) in cache-sized chunks."""
    rows, cols = w.shape
    step = max(1, CHUNK // padded_cols)
    buf = np.zeros((min(step, rows), padded_cols), np.float32) if padded_cols != cols else None
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        if buf is None:
            yield r0, r1, w[r0:r1]
        else:
            x = buf[: r1 - r0]
            x[:, :cols] = w[r0:r1]
            yield r0, r1, x


def _grouped(a: np.ndarray, per: str, block: int) -> np.ndarray:
    """View of a [n, padded_cols] chunk whose last axis is one scale group."""
    if per == "tensor":
        return a.reshape(1, -1)
    if per == "row":
        return a
    return a.reshape(a.shape[0], -1, block)


def _finite(x: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(x)):
        raise EdgeqError(f"{what}: weights contain NaN or inf")


def _already_ternary(w: np.ndarray, per: str, sums: np.ndarray, amax: np.ndarray, padded_cols: int) -> np.ndarray:
    """Groups whose nonzero |W| all equal their max (e.g. dequantized ternary weights).

    Such a group's float64 sum is exactly amax * count, so only groups where sum / amax is an
    integer are checked element by element — for ordinary weights none are.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sums / amax
    cand = (amax > 0) & (ratio == np.floor(ratio))
    if not cand.any():
        return cand
    idx = np.arange(w.shape[0]) if per == "tensor" else np.unique(np.nonzero(cand)[0])
    a = np.zeros((idx.size, padded_cols), np.float32)
    np.abs(w[idx], out=a[:, : w.shape[1]])
    g = _grouped(a, per, ids.T2_BLOCK)
    top = amax if per == "tensor" else amax[idx]
    ok = ((g == 0) | (g == top[..., None])).all(axis=-1)
    if per == "tensor":
        return cand & ok
    cand[idx] &= ok
    return cand


def ternary_absmean(w, per: str = "tensor", fmt: str = "t2") -> PackedTensor:
    """BitNet b1.58 absmean ternary quantization into T2 or T158.

    per="tensor" (BitNet; the scale is repeated per row) and "row" give SCALE_ROW fp32 scales,
    per="block" gives SCALE_BLOCK fp16 scales per 256 weights (GGUF TQ-style).
    """
    if fmt not in ("t2", "t158"):
        raise EdgeqError(f"ternary quantization packs into t2 or t158, not '{fmt}'")
    if per not in PER:
        raise EdgeqError(f"per must be one of {', '.join(PER)}, got '{per}'")
    f = FORMATS[fmt]
    w = _as_rows(w)
    rows, cols = w.shape
    block = ids.T2_BLOCK
    nb = -(-cols // block)
    pc = nb * block
    shape = {"tensor": (1,), "row": (rows,), "block": (rows, nb)}[per]
    sums = np.zeros(shape, np.float64)
    amax = np.zeros(shape, np.float32)
    pos = np.empty((min(rows, max(1, CHUNK // pc)), pc), np.bool_)
    neg = np.empty_like(pos)
    a = np.empty(pos.shape, np.float32)
    for r0, r1, x in _chunks(w, pc):
        g = _grouped(np.abs(x, out=a[: r1 - r0]), per, block)
        s, m = g.sum(axis=-1, dtype=np.float64), g.max(axis=-1)
        if per == "tensor":
            sums += s
            np.maximum(amax, m, out=amax)
        else:
            sums[r0:r1], amax[r0:r1] = s, m
    counts = {"tensor": rows * cols, "row": cols}.get(per)
    if counts is None:
        counts = np.full(nb, block, np.float64)
        counts[-1] = cols - block * (nb - 1)
    mean = sums / counts
    _finite(mean, fmt)
    scale = np.maximum(mean, EPS).astype(np.float32)
    scale = np.where(_already_ternary(w, per, sums, amax, pc), amax, scale)
    if per == "block":
        with np.errstate(over="ignore"):
            stored = np.maximum(scale, FP16_TINY).astype(np.float16)
        if not np.all(np.isfinite(stored)):
            raise EdgeqError(f"{fmt}: a block scale exceeds the fp16 range")
        scale = stored.astype(np.float32)
    else:
        stored = np.broadcast_to(scale, (rows,)).copy()
    # rint(x / s) >= 1  <=>  x > s/2 exactly in fp32 (s/2 is exact and x/s rounds monotonically), so
    # the codes come from two comparisons and byte arithmetic in uint64 lanes: c = 1 + (x > h) - (x < -h).
    half = scale * np.float32(0.5)
    codes = np.empty((rows, nb * f.code_bytes(block)), np.uint8)
    for r0, r1, x in _chunks(w, pc):
        n = r1 - r0
        h = half[0] if per == "tensor" else half[r0:r1, ..., None]
        np.greater(_grouped(x, per, block), h, out=_grouped(pos[:n], per, block))
        np.less(_grouped(x, per, block), -h, out=_grouped(neg[:n], per, block))
        sym = pos[:n].view(np.uint64) + _ONES
        sym -= neg[:n].view(np.uint64)
        codes[r0:r1] = f.encode(sym.view(np.uint8).reshape(n, pc), block)
    kind = ids.SCALE_BLOCK if per == "block" else ids.SCALE_ROW
    return PackedTensor(f.id, f.name, rows, cols, block, kind, codes, stored)


def binary_sign(w) -> PackedTensor:
    """B1: sign(W) (0 -> +1) with alpha = mean|W| per output row (fp32, float64 sum)."""
    f = FORMATS["b1"]
    w = _as_rows(w)
    rows, cols = w.shape
    pc = -(-cols // f.block) * f.block
    sums = np.empty(rows, np.float64)
    codes = np.empty((rows, pc // 8), np.uint8)
    for r0, r1, x in _chunks(w, pc):
        sums[r0:r1] = np.abs(x).sum(axis=1, dtype=np.float64)
        codes[r0:r1] = f.encode((x < 0).view(np.uint8), f.block)
    alpha = sums / cols
    _finite(alpha, "b1")
    return PackedTensor(f.id, f.name, rows, cols, f.block, ids.SCALE_ROW, codes, alpha.astype(np.float32))


def _group_reduce(flat: np.ndarray, op, group: int) -> np.ndarray:
    """op over consecutive groups of `group` (a power of 2) elements, by pairwise halving.

    Strided 1-D views keep every numpy call one long loop; a reduction along a short last
    axis costs a call per group and is several times slower.
    """
    while group > 1:
        flat = op(flat[0::2], flat[1::2])
        group //= 2
    return flat


def int4_groupwise(w, group: int = 32, asymmetric: bool = False) -> PackedTensor:
    """Q4, SCALE_BLOCK: ggml Q4_0's symmetric rule, or an asymmetric range with a zero point."""
    if group not in GROUPS:
        raise EdgeqError(f"int4 group must be one of {', '.join(map(str, GROUPS))}, got {group}")
    f = FORMATS["q4"]
    w = _as_rows(w)
    rows, cols = w.shape
    nb = -(-cols // group)
    pc = nb * group
    codes = np.empty((rows, pc // 2), np.uint8)
    d = np.empty((rows, nb), np.float32)
    zeros = np.empty((rows, nb), np.uint8) if asymmetric else None
    q = np.empty(min(rows, max(1, CHUNK // pc)) * pc, np.float32)
    u = np.empty(q.size, np.uint8)
    for r0, r1, x in _chunks(w, pc):
        flat = x.reshape(-1)
        qf, uf = q[: flat.size], u[: flat.size]
        hi = _group_reduce(flat, np.maximum, group)
        lo = _group_reduce(flat, np.minimum, group)
        if asymmetric:
            np.minimum(lo, 0, out=lo)
            np.maximum(hi, 0, out=hi)
            dc = (hi - lo) / np.float32(15)
        else:
            m = np.where(-lo > hi, lo, hi)
            tie = np.flatnonzero((-lo == hi) & (hi > 0))
            if tie.size:  # +a and -a both present: ggml keeps the first
                g = flat.reshape(-1, group)[tie]
                m[tie] = np.take_along_axis(g, np.abs(g).argmax(axis=1)[:, None], axis=1)[:, 0]
            dc = m * np.float32(-0.125)
        _finite(dc, "q4")
        with np.errstate(divide="ignore"):
            inv = np.where(dc == 0, np.float32(0), np.float32(1) / dc)
        np.multiply(flat, np.repeat(inv, group), out=qf)
        if asymmetric:
            z = np.clip(np.rint(-lo * inv), 0, 15)
            np.rint(qf, out=qf)
            qf += np.repeat(z, group)
            np.clip(qf, 0, 15, out=qf)
            zeros[r0:r1] = z.reshape(r1 - r0, nb)
        else:
            qf += np.float32(8.5)
            np.minimum(qf, np.float32(15), out=qf)  # then the cast truncates, as ggml's (int8_t) does
        uf[...] = qf
        codes[r0:r1] = f.encode(uf.reshape(r1 - r0, pc), group)
        d[r0:r1] = dc.reshape(r1 - r0, nb)
    with np.errstate(over="ignore"):
        stored = d.astype(np.float16)
    if not np.all(np.isfinite(stored)):
        raise EdgeqError("q4: a group scale exceeds the fp16 range")
    return PackedTensor(f.id, f.name, rows, cols, group, ids.SCALE_BLOCK, codes, stored, zeros)


def int8_per_channel(w) -> PackedTensor:
    """I8, SCALE_ROW: s = absmax / 127 per output row, values clip(rint(W / s), -127, 127)."""
    f = FORMATS["i8"]
    w = _as_rows(w)
    rows, cols = w.shape
    pc = -(-cols // f.block) * f.block
    amax = np.empty(rows, np.float32)
    for r0, r1, x in _chunks(w, pc):
        amax[r0:r1] = np.abs(x).max(axis=1)
    _finite(amax, "i8")
    scale = amax / np.float32(127)
    div = np.where(scale > 0, scale, np.float32(1))[:, None]
    codes = np.empty((rows, pc), np.uint8)
    for r0, r1, x in _chunks(w, pc):
        qf = np.rint(x / div[r0:r1])
        codes[r0:r1] = np.clip(qf, -127, 127).astype(np.int8).view(np.uint8)
    return PackedTensor(f.id, f.name, rows, cols, f.block, ids.SCALE_ROW, codes, scale)


def quantize_weight(w, fmt_name: str, group: int | None = None) -> PackedTensor:
    """The packer's entry: W [rows, cols] -> PackedTensor in `fmt_name` with edgeq's default recipe.

    t2/t158: ternary absmean per tensor (SCALE_ROW); b1: sign + alpha per row; q4: symmetric
    int4, `group` (default 32) per fp16 scale; i8: int8 per row. `group` is ignored except for q4.
    """
    if fmt_name in ("t2", "t158"):
        return ternary_absmean(w, "tensor", fmt_name)
    if fmt_name == "b1":
        return binary_sign(w)
    if fmt_name == "q4":
        return int4_groupwise(w, group or 32)
    if fmt_name == "i8":
        return int8_per_channel(w)
    raise EdgeqError(f"unknown format '{fmt_name}'; choose from {', '.join(FORMATS)}")
