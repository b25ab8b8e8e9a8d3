"""Q4: int4 group-wise (group 32, 64 or 128), two weights per byte, x[2j] in the low nibble.

Stored nibble u = q + 8 for symmetric groups (q in -8..7), u = q + z with a uint8 zero point z in
0..15 per group for asymmetric ones. This is the TFLite/CMSIS-NN int4 order; GGUF Q4_0 (byte j =
elements j and j+16) is reordered on import (edgeq.formats.gguf).
"""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat

GROUPS = (32, 64, 128)


class Q4(WeightFormat):
    id = ids.FMT_Q4
    name = "q4"
    block = 32
    blocks = GROUPS
    scale_kinds = (ids.SCALE_BLOCK,)
    lo, hi = -8, 7
    offset = 8
    zero_points = True

    def code_bytes(self, block: int) -> int:
        return block // 2

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        # byte = u[2j] | u[2j+1] << 4: OR a little-endian uint16 pair with itself shifted down 4 bits
        u16 = symbols.view("<u2")
        return (u16 | (u16 >> 4)).astype(np.uint8)

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        return np.stack([codes & np.uint8(15), codes >> 4], axis=-1).reshape(codes.shape[0], -1)

    def to_symbols(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        if zeros is None:
            return super().to_symbols(values, zeros, block)
        rows = values.shape[0]
        u = values.reshape(rows, -1, block).astype(np.int16) + zeros[:, :, None]
        return u.astype(np.uint8).reshape(rows, -1)

    def to_values(self, symbols: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        if zeros is None:
            return super().to_values(symbols, zeros, block)
        rows = symbols.shape[0]
        q = symbols.reshape(rows, -1, block).astype(np.int16) - zeros[:, :, None]
        return q.astype(np.int8).reshape(rows, -1)

    def check_values(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> None:
        if zeros is None:
            super().check_values(values, zeros, block)
            return
        z = np.repeat(zeros.astype(np.int16), block, axis=1)[:, : values.shape[1]]
        u = values.astype(np.int16) + z
        if u.min() < 0 or u.max() > 15:
            raise ValueError("q4: value + zero point must lie in 0..15")


FORMAT = Q4()
