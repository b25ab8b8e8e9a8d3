"""Quantizers: each against a plain transcription of its definition (edgeq.quant.weights docstring),
chunk boundaries, idempotence, bad input; activation quantization and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.errors import EdgeqError
from edgeq.formats import ids
from edgeq.quant import (
    asymmetric_qparams,
    binary_sign,
    calibrate_minmax,
    int4_groupwise,
    int8_per_channel,
    quantize_absmax_rows,
    quantize_weight,
    ternary_absmean,
)
from edgeq.quant.weights import CHUNK

SETTINGS = settings(max_examples=40, deadline=None)


def _weights(seed: int, rows: int, cols: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, cols)) * rng.uniform(1e-3, 10)).astype(np.float32)


shapes = st.tuples(st.integers(1, 12), st.integers(1, 600), st.integers(0, 2**32 - 1))


# ---- plain transcriptions of the definitions ----------------------------------------------------

def ref_ternary(w: np.ndarray, per: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, per-element scale) by BitNet's formula, one group at a time."""
    rows, cols = w.shape
    values = np.zeros(w.shape, np.float32)
    scale = np.zeros(w.shape, np.float32)
    if per == "tensor":
        groups = [(slice(None), slice(None))]
    elif per == "row":
        groups = [(r, slice(None)) for r in range(rows)]
    else:
        groups = [(r, slice(b, b + 256)) for r in range(rows) for b in range(0, cols, 256)]
    for g in groups:
        a = np.abs(w[g]).astype(np.float64)
        s = np.float32(max(a.sum() / a.size, 1e-8))
        nz = a[a > 0]
        if nz.size and np.all(nz == nz.max()):  # already ternary: keep its magnitude
            s = np.float32(nz.max())
        if per == "block":
            s = np.float32(np.float16(max(s, 2.0**-24)))
        values[g] = np.clip(np.rint(w[g] / s), -1, 1)
        scale[g] = s
    return values, scale


def ref_q4_symmetric(w: np.ndarray, group: int) -> np.ndarray:
    """ggml quantize_row_q4_0_ref, one group at a time, dequantized."""
    out = np.zeros_like(w)
    for r in range(w.shape[0]):
        for b in range(0, w.shape[1], group):
            x = w[r, b : b + group]
            m = x[np.argmax(np.abs(x))]
            d = np.float32(m) / np.float32(-8)
            inv = np.float32(0) if d == 0 else np.float32(1) / d
            u = np.minimum(15, (x * inv + np.float32(8.5)).astype(np.int8))
            out[r, b : b + group] = (u - 8).astype(np.float32) * np.float32(np.float16(d))
    return out


# ---- ternary -------------------------------------------------------------------------------------

@pytest.mark.parametrize("per", ["tensor", "row", "block"])
@SETTINGS
@given(shape=shapes)
def test_ternary_matches_definition(per, shape):
    rows, cols, seed = shape
    w = _weights(seed, rows, cols)
    for fmt in ("t2", "t158"):
        p = ternary_absmean(w, per, fmt)
        values, scale = ref_ternary(w, per)
        assert p.name == fmt and p.scale_kind == (ids.SCALE_BLOCK if per == "block" else ids.SCALE_ROW)
        assert np.array_equal(p.int_values()[:, :cols], values.astype(np.int8))
        assert np.array_equal(p.dequantize(), values * scale)
    if per == "tensor":
        assert np.all(p.scales == p.scales[0])


@settings(max_examples=200, deadline=None)
@given(st.floats(2.0**-20, 2.0**20, width=32), st.integers(-3, 3))
def test_ternary_threshold_equals_rounding(scale, steps):
    """The quantizer's shortcut: rint(x / s) >= 1 exactly when x > s/2, in float32."""
    s = np.float32(scale)
    x = np.float32(s * np.float32(0.5))
    for _ in range(abs(steps)):
        x = np.nextafter(x, np.float32(np.inf if steps > 0 else 0), dtype=np.float32)
    assert (np.rint(x / s) >= 1) == (x > s * np.float32(0.5))
    assert (np.rint(-x / s) <= -1) == (-x < -(s * np.float32(0.5)))


def test_ternary_rows_span_several_chunks():
    w = _weights(11, 3 * CHUNK // 1024 + 5, 1000)
    for per in ("tensor", "row", "block"):
        values, scale = ref_ternary(w, per)
        assert np.array_equal(ternary_absmean(w, per).dequantize(), values * scale)


def test_ternary_of_zero_weights_and_already_ternary_rows():
    p = ternary_absmean(np.zeros((2, 10), np.float32), "row")
    assert not p.int_values().any() and np.all(p.scales == np.float32(1e-8))
    w = np.array([[0.5, -0.5, 0, 0.5], [0.1, 0.2, 0.3, -0.4]], np.float32)
    p = ternary_absmean(w, "row")
    assert p.scales[0] == np.float32(0.5) and p.int_values()[0, :4].tolist() == [1, -1, 0, 1]
    assert p.scales[1] == np.float32(0.25)


# ---- binary, int4, int8 --------------------------------------------------------------------------

@SETTINGS
@given(shape=shapes)
def test_binary_matches_definition(shape):
    rows, cols, seed = shape
    w = _weights(seed, rows, cols)
    w[0, 0] = 0.0
    p = binary_sign(w)
    assert np.array_equal(p.int_values()[:, :cols], np.where(w < 0, -1, 1))
    assert p.int_values()[0, 0] == 1
    assert np.array_equal(p.scales, (np.abs(w).astype(np.float64).sum(1) / cols).astype(np.float32))


@pytest.mark.parametrize("group", [32, 64, 128])
@SETTINGS
@given(shape=shapes)
def test_int4_symmetric_matches_ggml(group, shape):
    rows, cols, seed = shape
    cols = -(-cols // group) * group
    w = _weights(seed, rows, cols)
    w[0, :2] = [1.5, -1.5]  # a tie between +a and -a
    p = int4_groupwise(w, group)
    assert p.zeros is None and p.block == group and p.scales.dtype == np.float16
    assert np.array_equal(p.dequantize(), ref_q4_symmetric(w, group))


@pytest.mark.parametrize("group", [32, 128])
@SETTINGS
@given(shape=shapes)
def test_int4_asymmetric_matches_definition(group, shape):
    rows, cols, seed = shape
    w = _weights(seed, rows, cols)
    p = int4_groupwise(w, group, asymmetric=True)
    nb = -(-cols // group)
    g = np.zeros((rows, nb * group), np.float32)
    g[:, :cols] = w
    g = g.reshape(rows, nb, group)
    lo, hi = np.minimum(g.min(2), 0), np.maximum(g.max(2), 0)
    d = (hi - lo) / np.float32(15)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    z = np.clip(np.rint(-lo * inv), 0, 15)
    u = np.clip(np.rint(g * inv[:, :, None]) + z[:, :, None], 0, 15)
    assert np.array_equal(p.zeros, z.astype(np.uint8))
    assert np.array_equal(p.scales, d.astype(np.float16))
    want = ((u - z[:, :, None]) * d.astype(np.float16).astype(np.float32)[:, :, None]).reshape(rows, -1)
    assert np.array_equal(p.dequantize(), want[:, :cols])
    # zero is exact: 0-valued weights dequantize to 0
    assert np.all(p.dequantize()[w == 0] == 0)


@SETTINGS
@given(shape=shapes)
def test_int8_matches_definition(shape):
    rows, cols, seed = shape
    w = _weights(seed, rows, cols)
    p = int8_per_channel(w)
    s = np.abs(w).max(1) / np.float32(127)
    assert np.array_equal(p.scales, s)
    q = np.clip(np.rint(w / s[:, None]), -127, 127)
    assert np.array_equal(p.int_values()[:, :cols], q.astype(np.int8))
    assert np.all(np.abs(p.int_values()).max(1) == 127)


def test_quantizers_span_chunks_and_padding():
    w = _weights(5, 2 * CHUNK // 512 + 3, 500)  # rows over several chunks, cols not a block multiple
    assert np.array_equal(int4_groupwise(w[:, :480], 32).dequantize(), ref_q4_symmetric(w[:, :480], 32))
    assert np.array_equal(binary_sign(w).int_values()[:, :500], np.where(w < 0, -1, 1))
    assert np.array_equal(int8_per_channel(w).int_values()[:, :500],
                          np.clip(np.rint(w / (np.abs(w).max(1) / np.float32(127))[:, None]), -127, 127))


@pytest.mark.parametrize("fmt,group", [("t2", None), ("t158", None), ("b1", None), ("q4", 32), ("q4", 128), ("i8", None)])
def test_quantizing_dequantized_weights_is_lossless(fmt, group):
    """What QAT trains with (the fake-quantized weights) packs to itself."""
    w = _weights(9, 40, 700)
    first = quantize_weight(w, fmt, group).dequantize()
    again = quantize_weight(first, fmt, group).dequantize()
    if fmt == "i8":  # the scale absmax/127 may move by one ulp
        np.testing.assert_allclose(again, first, rtol=2**-22, atol=0)
    else:
        assert np.array_equal(again, first)


def test_quantize_weight_dispatch_and_errors():
    w = _weights(1, 4, 64)
    assert quantize_weight(w, "t158").name == "t158"
    assert quantize_weight(w, "q4", 64).block == 64
    assert quantize_weight(w, "q4").block == 32
    assert quantize_weight(w, "i8", 64).name == "i8"  # group only matters for q4
    with pytest.raises(EdgeqError, match="unknown format 'q3'"):
        quantize_weight(w, "q3")
    with pytest.raises(EdgeqError, match="group must be one of"):
        int4_groupwise(w, 16)
    with pytest.raises(EdgeqError, match="2-D"):
        quantize_weight(np.ones(5, np.float32), "t2")
    with pytest.raises(EdgeqError, match="per must be"):
        ternary_absmean(w, "channel")
    with pytest.raises(EdgeqError, match="t2 or t158"):
        ternary_absmean(w, "tensor", "q4")
    for fmt in ("t2", "t158", "b1", "q4", "i8"):
        for bad in (np.nan, np.inf):
            x = w.copy()
            x[2, 3] = bad
            with pytest.raises(EdgeqError, match="NaN or inf"):
                quantize_weight(x, fmt)
    with pytest.raises(EdgeqError, match="fp16"):
        int4_groupwise(np.full((1, 32), 1e6, np.float32))
    with pytest.raises(EdgeqError, match="fp16"):
        ternary_absmean(np.full((1, 256), 1e5, np.float32), "block")


# ---- activations ---------------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 6), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_absmax_rows(n, k, seed):
    x = _weights(seed, n, k)
    x[0] = 0.0
    q, s = quantize_absmax_rows(x)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s.shape == (n,)
    assert not q[0].any()
    assert np.all(np.abs(q[1:]).max(1) == 127)
    assert np.all(np.abs(q * s[:, None] - x) <= s[:, None] * 0.5001)
    q3, s3 = quantize_absmax_rows(x.reshape(1, n, k))
    assert np.array_equal(q3[0], q) and np.array_equal(s3[0], s)


def _fake_quant(x, scale, zero):
    q = np.clip(np.rint(x * (np.float32(1) / np.float32(scale))) + zero, -128, 127)
    return (q - zero) * np.float32(scale)


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (0.0, 6.0), (-3.0, -1.0), (-0.1, 25.0), (-7.5, 0.3)])
def test_asymmetric_qparams_represent_zero_and_the_range(lo, hi):
    scale, zero = asymmetric_qparams(lo, hi)
    assert -128 <= zero <= 127 and scale == np.float32(scale)
    assert _fake_quant(np.float32(0), scale, zero) == 0
    x = np.linspace(min(lo, 0), max(hi, 0), 1001, dtype=np.float32)
    assert np.max(np.abs(_fake_quant(x, scale, zero) - x)) <= scale * 0.51
    if lo >= 0:
        assert zero == -128
    if hi <= 0:
        assert zero == 127


def test_calibrate_minmax():
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 3, (8, 16)).astype(np.float32) for _ in range(4)]
    lo = min(b.min() for b in batches)
    hi = max(b.max() for b in batches)
    assert calibrate_minmax(batches) == asymmetric_qparams(lo, hi)
    assert calibrate_minmax(np.concatenate(batches)) == asymmetric_qparams(lo, hi)
    data = rng.standard_normal(100_000).astype(np.float32)
    data[0] = 1000.0  # an outlier the percentile mode clips
    s_all, _ = calibrate_minmax([data])
    s_pct, _ = calibrate_minmax([data], percentile=99.9)
    assert s_pct < s_all / 50
    assert calibrate_minmax([np.zeros(4)]) == (1.0, 0)
    with pytest.raises(EdgeqError, match="at least one"):
        calibrate_minmax([])
    with pytest.raises(EdgeqError, match="percentile"):
        calibrate_minmax([data], percentile=10)
