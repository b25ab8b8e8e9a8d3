"""Lossless conversion between GGUF TQ2_0 / TQ1_0 / Q4_0 tensors and edgeq T2 / T158 / Q4.

Values are identical (scales copied bit for bit); only the container layout differs: edgeq keeps
codes and scales in separate regions and orders Q4 nibbles as 2j / 2j+1.
"""

from __future__ import annotations

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS, ids
from edgeq.formats.packed import PackedTensor

# GGML type ids (ggml.h; stable)
Q4_0, TQ1_0, TQ2_0 = 2, 34, 35
BLOCK_BYTES = {TQ2_0: (256, 66), TQ1_0: (256, 54), Q4_0: (32, 18)}
NAMES = {Q4_0: "Q4_0", TQ1_0: "TQ1_0", TQ2_0: "TQ2_0"}


def _blocks(qtype: int, raw, rows: int, cols: int) -> np.ndarray:
    block, nbytes = BLOCK_BYTES[qtype]
    if cols % block:
        raise EdgeqError(f"{NAMES[qtype]} rows must be a multiple of {block} values, got {cols}")
    raw = np.frombuffer(memoryview(raw).cast("B"), np.uint8) if not isinstance(raw, np.ndarray) else raw
    need = rows * (cols // block) * nbytes
    if raw.size != need:
        raise EdgeqError(f"{NAMES[qtype]} [{rows}, {cols}] needs {need} bytes, got {raw.size}")
    return raw.reshape(rows, cols // block, nbytes)


def from_gguf(qtype: int, raw, rows: int, cols: int) -> PackedTensor:
    """GGUF tensor bytes (row-major [rows, cols]) -> edgeq PackedTensor with SCALE_BLOCK."""
    if qtype not in BLOCK_BYTES:
        raise EdgeqError(f"GGML type {qtype} has no lossless edgeq format (supported: TQ2_0, TQ1_0, Q4_0)")
    b = _blocks(qtype, raw, rows, cols)
    if qtype == TQ2_0:
        codes, d, fmt = b[:, :, :64], b[:, :, 64:66], FORMATS["t2"]
    elif qtype == TQ1_0:
        codes, d, fmt = b[:, :, :52], b[:, :, 52:54], FORMATS["t158"]
    else:
        d, qs, fmt = b[:, :, 0:2], b[:, :, 2:18], FORMATS["q4"]
        u = np.concatenate([qs & np.uint8(15), qs >> 4], axis=-1)  # elements j and j+16
        codes = u[:, :, 0::2] | (u[:, :, 1::2] << 4)
    scales = np.ascontiguousarray(d).view(np.float16).reshape(rows, -1)
    return PackedTensor(fmt, rows, cols, fmt.block, ids.SCALE_BLOCK, np.ascontiguousarray(codes).reshape(rows, -1),
                        scales)


def to_gguf(p: PackedTensor) -> tuple[int, np.ndarray]:
    """edgeq T2/T158/Q4(group 32, symmetric, SCALE_BLOCK, unpadded rows) -> (GGML type, bytes)."""
    if p.scale_kind != ids.SCALE_BLOCK or p.zeros is not None or p.cols % p.block:
        raise EdgeqError("only block-scaled, symmetric tensors with whole blocks convert to GGUF")
    d = np.ascontiguousarray(p.scales.astype(np.float16)).view(np.uint8).reshape(p.rows, p.n_blocks, 2)
    codes = p.codes.reshape(p.rows, p.n_blocks, -1)
    if p.format == ids.FMT_T2:
        return TQ2_0, np.concatenate([codes, d], axis=-1).reshape(p.rows, -1)
    if p.format == ids.FMT_T158:
        return TQ1_0, np.concatenate([codes, d], axis=-1).reshape(p.rows, -1)
    if p.format == ids.FMT_Q4 and p.block == 32:
        u = np.empty(codes.shape[:2] + (32,), np.uint8)
        u[..., 0::2] = codes & np.uint8(15)
        u[..., 1::2] = codes >> 4
        qs = u[..., :16] | (u[..., 16:] << 4)
        return Q4_0, np.concatenate([d, qs], axis=-1).reshape(p.rows, -1)
    raise EdgeqError(f"{p.fmt.name} (block {p.block}) has no GGUF equivalent")
