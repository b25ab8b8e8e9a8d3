"""Lossless conversion between GGUF TQ2_0 / TQ1_0 / Q4_0 / Q8_0 tensors and edgeq T2 / T158 / Q4 / I8
(block-scaled, 32).

Values are identical and the fp16 scales are copied bit for bit; only the container differs:
GGUF interleaves scales with the codes of each block, edgeq keeps them in separate regions, and
Q4_0 stores elements j and j+16 in byte j where edgeq's Q4 stores 2j and 2j+1. Needs no `gguf`
package: the GGML type ids below are stable (ggml.h).
"""

from __future__ import annotations

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.formats import i8, ids, q4, t2, t158
from edgeq.formats.packed import PackedTensor

Q4_0, Q8_0, TQ1_0, TQ2_0 = 2, 8, 34, 35
_NAMES = {"Q4_0": Q4_0, "Q8_0": Q8_0, "TQ1_0": TQ1_0, "TQ2_0": TQ2_0}
# GGML type -> (edgeq format, weights per block, bytes per block, byte range of the fp16 scale)
_TYPES = {
    TQ2_0: (t2.FORMAT, 256, 66, 64),
    TQ1_0: (t158.FORMAT, 256, 54, 52),
    Q4_0: (q4.FORMAT, 32, 18, 0),
    Q8_0: (i8.FORMAT, 32, 34, 0),
}


def _qtype(qtype) -> int:
    """GGML type as an int from an int, a gguf.GGMLQuantizationType or a name like 'TQ2_0'."""
    if isinstance(qtype, str):
        if qtype.upper() not in _NAMES:
            raise EdgeqError(f"GGML type {qtype} has no lossless edgeq format (supported: {', '.join(_NAMES)})")
        return _NAMES[qtype.upper()]
    if int(qtype) not in _TYPES:
        raise EdgeqError(f"GGML type {int(qtype)} has no lossless edgeq format (supported: {', '.join(_NAMES)})")
    return int(qtype)


def _type_name(qtype: int) -> str:
    return next(n for n, v in _NAMES.items() if v == qtype)


def from_gguf(qtype, data, shape: tuple[int, ...]) -> PackedTensor:
    """GGUF tensor bytes of numpy shape `shape` (last dim contiguous) -> PackedTensor, SCALE_BLOCK.

    Leading dims are flattened into rows. dequantize() of the result equals
    gguf.quants.dequantize(data, qtype) exactly.
    """
    qt = _qtype(qtype)
    fmt, block, type_size, d_at = _TYPES[qt]
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise EdgeqError(f"{_type_name(qt)}: bad shape {shape}")
    cols = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    if cols % block:
        raise EdgeqError(f"{_type_name(qt)}: rows must hold a multiple of {block} values, got {cols}")
    raw = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else np.ascontiguousarray(data)
    raw = raw.view(np.uint8).reshape(-1)
    nb = cols // block
    if raw.size != rows * nb * type_size:
        raise EdgeqError(f"{_type_name(qt)} {list(shape)}: needs {rows * nb * type_size} bytes, got {raw.size}")
    blocks = raw.reshape(rows, nb, type_size)
    scales = np.ascontiguousarray(blocks[:, :, d_at : d_at + 2]).view("<f2").reshape(rows, nb)
    if qt == Q4_0:
        qs = blocks[:, :, 2:]
        u = np.concatenate([qs & np.uint8(15), qs >> 4], axis=-1)  # elements j and j+16 -> 0..31
        codes = fmt.encode(u.reshape(rows, -1), block)
    else:
        code_at = 2 if d_at == 0 else 0
        codes = np.ascontiguousarray(blocks[:, :, code_at : code_at + fmt.code_bytes(block)]).reshape(rows, -1)
    return PackedTensor(fmt.id, fmt.name, rows, cols, block, ids.SCALE_BLOCK, codes, scales)


def to_gguf(p: PackedTensor) -> tuple[int, np.ndarray]:
    """T2 / T158 / Q4 (group 32, symmetric), block-scaled, whole blocks -> (GGML type, uint8 [rows, bytes])."""
    qt = next((t for t, (f, block, _, _) in _TYPES.items() if f.id == p.format and block == p.block), None)
    if qt is None:
        raise EdgeqError(f"{p.name} with block {p.block} has no GGUF equivalent (T2, T158, Q4 group 32, I8 block 32)")
    if p.scale_kind != ids.SCALE_BLOCK or p.zeros is not None:
        raise EdgeqError(f"{p.name}: only block-scaled, symmetric tensors convert to {_type_name(qt)}")
    if p.cols % p.block:
        raise EdgeqError(f"{p.name}: {_type_name(qt)} needs rows of whole blocks of {p.block}, got {p.cols}")
    d = np.ascontiguousarray(p.scales, "<f2").view(np.uint8).reshape(p.rows, p.n_blocks, 2)
    codes = np.ascontiguousarray(p.codes).reshape(p.rows, p.n_blocks, -1)
    if qt == Q4_0:
        u = p.fmt.decode(np.ascontiguousarray(p.codes), p.block).reshape(p.rows, p.n_blocks, 32)
        qs = u[:, :, :16] | (u[:, :, 16:] << 4)
        parts = [d, qs]
    elif qt == Q8_0:
        parts = [d, codes]
    else:
        parts = [codes, d]
    return qt, np.concatenate(parts, axis=-1).reshape(p.rows, -1)
