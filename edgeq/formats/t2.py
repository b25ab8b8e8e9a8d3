"""T2: ternary, 2-bit codes c = w + 1, 256 per block, GGUF TQ2_0 bit order (docs/formats.md)."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import Format

SHIFTS = np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 1, 4, 1)


class T2(Format):
    id = ids.FMT_T2
    name = "t2"
    block = ids.T2_BLOCK
    blocks = (ids.T2_BLOCK,)
    scale_kinds = (ids.SCALE_ROW, ids.SCALE_BLOCK)
    nominal_bpw = 2.0625

    def code_bytes(self, block: int) -> int:
        return ids.T2_CODE_BYTES

    def encode(self, values, block):
        rows = values.shape[0]
        c = (values.astype(np.uint8) + np.uint8(1)).reshape(rows, -1, 2, 4, 32)  # block, half, l, m
        packed = c[:, :, :, 0] | (c[:, :, :, 1] << 2) | (c[:, :, :, 2] << 4) | (c[:, :, :, 3] << 6)
        return packed.reshape(rows, -1)

    def decode(self, codes, block):
        rows = codes.shape[0]
        q = codes.reshape(rows, -1, 2, 1, 32) >> SHIFTS
        return ((q & np.uint8(3)).astype(np.int8) - np.int8(1)).reshape(rows, -1)


FORMAT = T2()
