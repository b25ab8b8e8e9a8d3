"""Q4: int4 group-wise, two per byte with element 2j in the low nibble, u = q + 8 or u - z."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import Format
from edgeq.formats.packed import PackedTensor


class Q4(Format):
    id = ids.FMT_Q4
    name = "q4"
    block = 32
    blocks = (32, 64, 128)
    scale_kinds = (ids.SCALE_BLOCK,)
    offset = 8
    nominal_bpw = 4.5

    def code_bytes(self, block: int) -> int:
        return block // 2

    def encode(self, values, block):
        return self.encode_codes((values.astype(np.int16) + 8).astype(np.uint8))

    def encode_codes(self, u: np.ndarray) -> np.ndarray:
        """Stored nibbles u [rows, padded_cols] -> bytes, element 2j in the low nibble."""
        u = u.astype(np.uint8) & np.uint8(15)
        return u[:, 0::2] | (u[:, 1::2] << 4)

    def decode(self, codes, block):
        out = np.empty((codes.shape[0], codes.shape[1] * 2), np.uint8)
        out[:, 0::2] = codes & np.uint8(15)
        out[:, 1::2] = codes >> 4
        return out

    def pack_asymmetric(self, codes: np.ndarray, scales: np.ndarray, zeros: np.ndarray,
                        block: int | None = None) -> PackedTensor:
        """Packs stored nibbles u [rows, cols] with per-group scales and zero points (value u - z)."""
        block = block or self.block
        self.check(block, ids.SCALE_BLOCK, True)
        rows, cols = codes.shape
        nb = -(-cols // block)
        zeros = np.ascontiguousarray(np.asarray(zeros, np.uint8).reshape(rows, nb))
        u = np.empty((rows, nb * block), np.uint8)
        u[:, :cols] = codes
        u[:, cols:] = zeros[:, -1:]  # padding decodes to value 0
        s = np.ascontiguousarray(np.asarray(scales, np.float16).reshape(rows, nb))
        return PackedTensor(self, rows, cols, block, ids.SCALE_BLOCK, self.encode_codes(u), s, zeros)


FORMAT = Q4()
