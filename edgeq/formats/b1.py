"""B1: binary, bit 1 = -1 and bit 0 = +1 (larq), 64 weights per block as two little-endian uint32.

Bit i of word w holds x[32w + i]; in bytes, bit j of byte k holds x[8k + j]. Binary activations
(op BINARIZE) use the same packing along the feature axis, rows padded to 64 bits with 0 bits.
"""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat


class B1(WeightFormat):
    id = ids.FMT_B1
    name = "b1"
    block = ids.B1_BLOCK
    blocks = (ids.B1_BLOCK,)
    scale_kinds = (ids.SCALE_ROW,)
    lo, hi = -1, 1

    def code_bytes(self, block: int) -> int:
        return ids.B1_CODE_BYTES

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        return np.packbits(symbols, axis=1, bitorder="little")

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        return np.unpackbits(codes, axis=1, bitorder="little")

    def to_symbols(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return (values < 0).view(np.uint8)

    def to_values(self, symbols: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return (1 - 2 * symbols.astype(np.int8)).astype(np.int8)

    def check_values(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> None:
        if not np.all((values == 1) | (values == -1)):
            raise ValueError("b1: values must be -1 or +1")


def pack_binary_activations(x: np.ndarray) -> np.ndarray:
    """Rows [N, K] (any real or ±1 values) -> B1 words uint32 [N, 2*ceil(K/64)]: bit 1 where x < 0."""
    x = np.asarray(x)
    n, k = x.shape
    bits = np.zeros((n, -(-k // ids.B1_BLOCK) * ids.B1_BLOCK), np.uint8)
    bits[:, :k] = x < 0
    return np.packbits(bits, axis=1, bitorder="little").view("<u4")


def unpack_binary_activations(words: np.ndarray, cols: int) -> np.ndarray:
    """B1 words uint32 [N, W] -> int8 ±1 [N, cols] (the inverse of pack_binary_activations)."""
    words = np.ascontiguousarray(words, "<u4")
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :cols]
    return (1 - 2 * bits.astype(np.int8)).astype(np.int8)


FORMAT = B1()
