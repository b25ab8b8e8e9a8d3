"""T158: ternary in base 3, 5 trits per byte, 256 weights per block in 52 bytes (GGUF TQ1_0 order).

Trits t = x + 1. Bytes 0..31 hold t[m + 32n], bytes 32..47 hold t[160 + m + 16n] (n = 0..4), bytes
48..51 hold t[240 + m + 4n] (n = 0..3, last slot 0), as v = sum t * 3^(4-n), stored as
ceil(v * 256 / 243). Trit n decodes as ((uint8)(byte * 3^n) * 3) >> 8 — the multiply wraps at 8
bits, which is also how bytes >= 243 (never written, possible in a GGUF file) decode.
"""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import WeightFormat

# (first element, trits per byte, bytes) of the three byte groups of a block
_GROUPS = ((0, 5, 32), (160, 5, 16), (240, 4, 4))
_ENCODE = ((np.arange(243, dtype=np.uint32) * 256 + 242) // 243).astype(np.uint8)  # ceil(v*256/243)
# _DECODE[byte, n] = trit n of byte, by the spec's wrapping multiply
_DECODE = ((((np.arange(256, dtype=np.uint32)[:, None] * 3 ** np.arange(5, dtype=np.uint32)) & 0xFF) * 3) >> 8
           ).astype(np.uint8)


class T158(WeightFormat):
    id = ids.FMT_T158
    name = "t158"
    block = ids.T158_BLOCK
    blocks = (ids.T158_BLOCK,)
    scale_kinds = (ids.SCALE_ROW, ids.SCALE_BLOCK)
    lo, hi = -1, 1
    offset = 1

    def code_bytes(self, block: int) -> int:
        return ids.T158_CODE_BYTES

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        rows = symbols.shape[0]
        t = symbols.reshape(rows, -1, 256)
        v = np.empty(t.shape[:2] + (ids.T158_CODE_BYTES,), np.uint8)
        at = 0
        for start, n, width in _GROUPS:
            digits = t[:, :, start : start + n * width].reshape(rows, -1, n, width)
            acc = digits[:, :, 0].copy()
            for k in range(1, 5):  # Horner over the 5 trit slots; a missing 5th trit is 0
                acc *= np.uint8(3)
                if k < n:
                    acc += digits[:, :, k]
            v[:, :, at : at + width] = acc
            at += width
        return _ENCODE[v].reshape(rows, -1)

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        rows = codes.shape[0]
        q = codes.reshape(rows, -1, ids.T158_CODE_BYTES)
        out = np.empty(q.shape[:2] + (256,), np.uint8)
        at = 0
        for start, n, width in _GROUPS:
            trits = _DECODE[q[:, :, at : at + width], :n]  # [rows, nb, width, n]
            out[:, :, start : start + n * width] = trits.transpose(0, 1, 3, 2).reshape(rows, -1, n * width)
            at += width
        return out.reshape(rows, -1)


FORMAT = T158()
