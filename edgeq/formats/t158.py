"""T158: ternary base-3, 5 trits per byte, 256 per block in 52 bytes, GGUF TQ1_0 order."""

import numpy as np

from edgeq.formats import ids
from edgeq.formats.base import Format

POW5 = np.array([81, 27, 9, 3, 1], np.uint16)
POW4 = np.array([81, 27, 9, 3], np.uint16)
MUL5 = np.array([1, 3, 9, 27, 81], np.uint8)
MUL4 = np.array([1, 3, 9, 27], np.uint8)


def _pack(t: np.ndarray, groups: int, width: int, weights: np.ndarray) -> np.ndarray:
    """t [..., groups*width] trits -> bytes [..., width], element m + width*n is digit n."""
    v = (t.reshape(t.shape[:-1] + (groups, width)).astype(np.uint16) * weights[:, None]).sum(axis=-2)
    return ((v * 256 + 242) // 243).astype(np.uint8)


def _unpack(q: np.ndarray, mul: np.ndarray) -> np.ndarray:
    """bytes [..., width] -> trits [..., len(mul)*width] (element m + width*n)."""
    x = q[..., None, :] * mul[:, None]  # wraps at 8 bits, as the C decoder does
    t = (x.astype(np.uint16) * 3) >> 8
    return t.reshape(q.shape[:-1] + (-1,)).astype(np.int8)


class T158(Format):
    id = ids.FMT_T158
    name = "t158"
    block = ids.T158_BLOCK
    blocks = (ids.T158_BLOCK,)
    scale_kinds = (ids.SCALE_ROW, ids.SCALE_BLOCK)
    nominal_bpw = 1.6875

    def code_bytes(self, block: int) -> int:
        return ids.T158_CODE_BYTES

    def encode(self, values, block):
        rows = values.shape[0]
        t = (values.astype(np.int16) + 1).reshape(rows, -1, 256)
        out = np.concatenate([_pack(t[..., :160], 5, 32, POW5), _pack(t[..., 160:240], 5, 16, POW5),
                              _pack(t[..., 240:], 4, 4, POW4)], axis=-1)
        return out.reshape(rows, -1)

    def decode(self, codes, block):
        rows = codes.shape[0]
        q = codes.reshape(rows, -1, 52)
        t = np.concatenate([_unpack(q[..., :32], MUL5), _unpack(q[..., 32:48], MUL5),
                            _unpack(q[..., 48:], MUL4)], axis=-1)
        return (t - np.int8(1)).reshape(rows, -1)


FORMAT = T158()
