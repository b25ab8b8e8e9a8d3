"""T2: ternary, 2-bit codes c = w + 1, 256 weights per block in 64 bytes (GGUF TQ2_0 order).

Byte 32h + m of a block (h in {0, 1}, m in 0..31) holds, in bits 2l..2l+1, the code of
x[128h + 32l + m]. Code 3 means +2; edgeq never writes it, GGUF files may.
"""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat

_LOW2 = np.uint64(0x0303030303030303)  # the low two bits of each byte of a uint64 lane
_SHIFTS = np.array([0, 2, 4, 6], np.uint64).reshape(1, 4, 1)


class T2(WeightFormat):
    id = ids.FMT_T2
    name = "t2"
    block = ids.T2_BLOCK
    blocks = (ids.T2_BLOCK,)
    scale_kinds = (ids.SCALE_ROW, ids.SCALE_BLOCK)
    lo, hi = -1, 1
    offset = 1

    def code_bytes(self, block: int) -> int:
        return ids.T2_CODE_BYTES

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        # Each 128-symbol half is [l=4][m=32] bytes = 4 x 4 uint64 lanes; OR-ing the l rows shifted by 2l
        # packs 8 bytes per instruction and never carries across bytes (symbols <= 3).
        rows = symbols.shape[0]
        s = symbols.view(np.uint64).reshape(-1, 4, 4)
        out = s[:, 1] << np.uint64(2)
        out |= s[:, 0]
        out |= s[:, 2] << np.uint64(4)
        out |= s[:, 3] << np.uint64(6)
        return out.view(np.uint8).reshape(rows, -1)

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        rows = codes.shape[0]
        c = codes.view(np.uint64).reshape(-1, 1, 4)
        return ((c >> _SHIFTS) & _LOW2).view(np.uint8).reshape(rows, -1)


FORMAT = T2()
