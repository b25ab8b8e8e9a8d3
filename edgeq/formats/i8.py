"""I8: plain int8 weights; one fp32 scale per row (rows padded to 16 bytes), or an fp16 scale per
32 weights (block-scaled: exactly GGUF Q8_0, so llama models keep their stored values)."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat


class I8(WeightFormat):
    id = ids.FMT_I8
    name = "i8"
    block = ids.I8_BLOCK
    blocks = (ids.I8_BLOCK, ids.I8_SCALE_BLOCK)
    scale_kinds = (ids.SCALE_ROW, ids.SCALE_BLOCK)
    lo, hi = -128, 127

    def code_bytes(self, block: int) -> int:
        return block

    def block_problem(self, block: int, scale_kind: int) -> str | None:
        if (block == ids.I8_SCALE_BLOCK) != (scale_kind == ids.SCALE_BLOCK):
            return (f"i8: row scales go with block {ids.I8_BLOCK}, block scales with block "
                    f"{ids.I8_SCALE_BLOCK} (got block {block})")
        return None

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        return symbols

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        return codes

    def to_symbols(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return values.view(np.uint8)

    def to_values(self, symbols: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        return symbols.view(np.int8).copy()


FORMAT = I8()
