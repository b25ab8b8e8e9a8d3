"""B1: binary, bit set = -1 (larq), 32-bit little-endian words along the row, 64 per block."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import Format


def pack_signs(negative: np.ndarray) -> np.ndarray:
    """bool [rows, padded_cols] (True = -1) -> uint8 [rows, padded_cols/8], LE bit order."""
    return np.packbits(negative, axis=-1, bitorder="little")


class B1(Format):
    id = ids.FMT_B1
    name = "b1"
    block = ids.B1_BLOCK
    blocks = (ids.B1_BLOCK,)
    scale_kinds = (ids.SCALE_ROW,)
    nominal_bpw = 1.0

    def code_bytes(self, block: int) -> int:
        return ids.B1_CODE_BYTES

    def encode(self, values, block):
        return pack_signs(values < 0)

    def decode(self, codes, block):
        bits = np.unpackbits(codes, axis=-1, bitorder="little")
        return (1 - 2 * bits.astype(np.int8)).astype(np.int8)


def pack_activations(x: np.ndarray) -> np.ndarray:
    """Sign-binarizes float/int rows [N, K] into B1 words uint32 [N, ceil(K/64)*2] (x < 0 -> bit 1)."""
    n, k = x.shape
    padded = np.zeros((n, -(-k // 64) * 64), bool)
    padded[:, :k] = x < 0
    return pack_signs(padded).view(np.uint32)


FORMAT = B1()
