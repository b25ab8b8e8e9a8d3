"""GGUF interop: TQ2_0 -> T2, TQ1_0 -> T158, Q4_0 -> Q4, Q8_0 -> I8 blocks dequantize exactly as gguf-py does, back
and forth, including bytes edgeq never writes (T158 bytes >= 243, T2 code 3)."""

from __future__ import annotations

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS, ids
from edgeq.formats.gguf import from_gguf, to_gguf
from edgeq.quant import int4_groupwise, ternary_absmean

TYPES = {Q.TQ2_0: ("t2", 256, 66), Q.TQ1_0: ("t158", 256, 54), Q.Q4_0: ("q4", 32, 18), Q.Q8_0: ("i8", 32, 34)}


@pytest.mark.parametrize("qtype", list(TYPES))
@pytest.mark.parametrize("rows,cols", [(1, 256), (3, 512), (7, 768), (13, 256)])
def test_quantized_by_gguf_dequantizes_identically(qtype, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    w = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 3)).astype(np.float32)
    raw = gguf.quants.quantize(w, qtype)
    p = from_gguf(qtype, raw, w.shape)
    name, block, _ = TYPES[qtype]
    assert (p.name, p.block, p.scale_kind, p.rows, p.cols) == (name, block, ids.SCALE_BLOCK, rows, cols)
    assert np.array_equal(p.dequantize(), gguf.quants.dequantize(raw, qtype))
    back_type, back = to_gguf(p)
    assert back_type == qtype and np.array_equal(back, raw)
    # from raw bytes and a 3-D shape too
    p3 = from_gguf(qtype.name, raw.tobytes(), (1, rows, cols))
    assert np.array_equal(p3.dequantize(), p.dequantize())


@pytest.mark.parametrize("qtype", list(TYPES))
def test_arbitrary_bytes_decode_like_gguf(qtype):
    """Every code byte value, including ones edgeq never writes, decodes as gguf-py decodes it."""
    _name, block, size = TYPES[qtype]
    rng = np.random.default_rng(7)
    rows, nb = 5, 4
    raw = rng.integers(0, 256, (rows, nb, size), dtype=np.uint8)
    d_at = 0 if qtype in (Q.Q4_0, Q.Q8_0) else size - 2
    raw[:, :, d_at : d_at + 2] = rng.uniform(-2, 2, (rows, nb, 1)).astype(np.float16).view(np.uint8)
    if qtype == Q.TQ1_0:
        raw[0, 0, :52] = np.arange(204, 256)  # bytes >= 243 included
    raw = raw.reshape(rows, -1)
    p = from_gguf(qtype, raw, (rows, nb * block))
    assert np.array_equal(p.dequantize(), gguf.quants.dequantize(raw, qtype))
    assert np.array_equal(to_gguf(p)[1], raw)
    if qtype == Q.TQ2_0:
        assert p.int_values().max() == 2  # code 3


def test_edgeq_int4_is_ggml_q4_0_bit_for_bit():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((9, 1024)).astype(np.float32)
    w[0, :32] = np.where(np.arange(32) % 2, 1.0, -1.0)  # ties between +a and -a: the first one wins
    w[1, :32] = np.where(np.arange(32) % 2, -1.0, 1.0)
    w[2, :32] = 0.0
    assert np.array_equal(to_gguf(int4_groupwise(w, 32))[1], gguf.quants.quantize(w, Q.Q4_0))


def test_block_scaled_ternary_exports_to_gguf():
    w = np.random.default_rng(4).standard_normal((3, 512)).astype(np.float32)
    for fmt, qtype in (("t2", Q.TQ2_0), ("t158", Q.TQ1_0)):
        p = ternary_absmean(w, "block", fmt)
        qt, raw = to_gguf(p)
        assert qt == qtype
        assert np.array_equal(gguf.quants.dequantize(raw, qtype), p.dequantize())


def test_conversion_errors():
    raw = gguf.quants.quantize(np.ones((2, 256), np.float32), Q.TQ2_0)
    with pytest.raises(EdgeqError, match="multiple of 256"):
        from_gguf(Q.TQ2_0, raw, (2, 200))
    with pytest.raises(EdgeqError, match="needs 132 bytes, got 131"):
        from_gguf(Q.TQ2_0, raw.reshape(-1)[:-1], (1, 512))
    with pytest.raises(EdgeqError, match="no lossless edgeq format"):
        from_gguf(Q.Q6_K, raw, (2, 256))
    with pytest.raises(EdgeqError, match="no lossless edgeq format"):
        from_gguf("Q5_K", raw, (2, 256))
    w = np.ones((2, 256), np.float32)
    with pytest.raises(EdgeqError, match="only block-scaled"):
        to_gguf(ternary_absmean(w, "tensor"))
    with pytest.raises(EdgeqError, match="only block-scaled"):
        to_gguf(int4_groupwise(w, 32, asymmetric=True))
    with pytest.raises(EdgeqError, match="no GGUF equivalent"):
        to_gguf(int4_groupwise(w, 64))
    with pytest.raises(EdgeqError, match="no GGUF equivalent"):
        to_gguf(FORMATS["i8"].pack(np.ones((1, 4), np.int8), np.ones(1, np.float32)))
    with pytest.raises(EdgeqError, match="whole blocks"):
        to_gguf(ternary_absmean(np.ones((1, 300), np.float32), "block"))
