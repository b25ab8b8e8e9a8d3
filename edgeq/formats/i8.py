"""I8: plain int8 weights, one fp32 scale per row, row stride padded to 16 bytes."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat


class I8(WeightFormat):
    id = ids.FMT_I8
    name = "i8"
    block = ids.I8_BLOCK
    blocks = (ids.I8_BLOCK,)
    scale_kinds = (ids.SCALE_ROW,)
    lo, hi = -128, 127

    def code_bytes(self, block: int) -> int:
        return ids.I8_BLOCK

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        return symbols

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        return codes

    def to_symbols(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return values.view(np.uint8)

    def to_values(self, symbols: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return symbols.view(np.int8).copy()


FORMAT = I8()
