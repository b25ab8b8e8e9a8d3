"""I8: int8 per output row with an fp32 scale; rows padded to 16 bytes."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import Format


class I8(Format):
    id = ids.FMT_I8
    name = "i8"
    block = ids.I8_BLOCK
    blocks = (ids.I8_BLOCK,)
    scale_kinds = (ids.SCALE_ROW,)
    nominal_bpw = 8.0

    def code_bytes(self, block: int) -> int:
        return ids.I8_BLOCK

    def encode(self, values, block):
        return np.ascontiguousarray(values.astype(np.int8)).view(np.uint8)

    def decode(self, codes, block):
        return codes.view(np.int8)


FORMAT = I8()
