"""Fixed-point requantization against a slow scalar transcription of TFLite/gemmlowp (Python ints,
C semantics spelled out), including the saturation corners."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.errors import EdgeqError
from edgeq.quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

int32s = st.integers(INT32_MIN, INT32_MAX)


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return c_div(ab + nudge, 1 << 31)


def rdbp(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT (arithmetic right shift)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, mult: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier; the left shift saturates to int32 (edgeq's definition)."""
    left, right = max(shift, 0), max(-shift, 0)
    shifted = min(max(x * (1 << left), INT32_MIN), INT32_MAX)
    return rdbp(srdhm(shifted, mult), right)


def tflite_quantize_multiplier(real: float) -> tuple[int, int]:
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(Fraction(q) * (1 << 31) + Fraction(1, 2))  # std::round, exactly
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


@settings(max_examples=300, deadline=None)
@given(int32s, st.integers(0, INT32_MAX), st.integers(-31, 30))
def test_mbqm_matches_scalar_reference(x, mult, shift):
    got = multiply_by_quantized_multiplier(np.int32(x), mult, shift)
    assert got.dtype == np.int32
    assert int(got) == mbqm(x, mult, shift)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mbqm_vectorised_per_element_multipliers(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(INT32_MIN, INT32_MAX, (5, 7), dtype=np.int64, endpoint=True).astype(np.int32)
    x[0, :3] = [INT32_MIN, INT32_MAX, 0]
    mult = rng.integers(0, INT32_MAX, 7, endpoint=True).astype(np.int32)
    mult[0] = INT32_MAX
    shift = rng.integers(-31, 31, 7).astype(np.int32)
    got = multiply_by_quantized_multiplier(x, mult[None, :], shift[None, :])
    want = [[mbqm(int(x[i, j]), int(mult[j]), int(shift[j])) for j in range(7)] for i in range(5)]
    assert got.tolist() == want


@settings(max_examples=300, deadline=None)
@given(int32s, int32s)
def test_srdhm_matches_scalar_reference(a, b):
    assert int(saturating_rounding_doubling_high_mul(a, b)) == srdhm(a, b)


@settings(max_examples=300, deadline=None)
@given(int32s, st.integers(0, 31))
def test_rdbp_matches_scalar_reference(x, exponent):
    assert int(rounding_divide_by_pot(x, exponent)) == rdbp(x, exponent)


def test_saturation_corners():
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX
    assert int(multiply_by_quantized_multiplier(INT32_MIN, INT32_MIN, 0)) == INT32_MAX
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX)) == -INT32_MAX
    # the left shift saturates instead of wrapping: 2^30 << 2 would wrap to 0
    assert int(multiply_by_quantized_multiplier(1 << 30, 1 << 30, 2)) == INT32_MAX // 2 + 1
    assert int(multiply_by_quantized_multiplier(-(1 << 30), 1 << 30, 2)) == INT32_MIN // 2
    # rounding: half away from zero in RoundingDivideByPOT
    assert [int(rounding_divide_by_pot(v, 1)) for v in (3, -3, 1, -1, 2)] == [2, -2, 1, -1, 1]


@settings(max_examples=300, deadline=None)
@given(st.floats(2.0**-40, 2.0**29, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_matches_tflite(real):
    mult, shift = quantize_multiplier(real)
    assert (mult, shift) == tflite_quantize_multiplier(real)
    if mult:
        assert 1 << 30 <= mult < 1 << 31
        assert abs(mult * 2.0 ** (shift - 31) - real) <= real * 2.0**-31


@pytest.mark.parametrize("real,expected", [
    (0.0, (0, 0)), (0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.75, (3 << 29, 0)),
    (1 - 2.0**-40, (1 << 30, 1)), (2.0**-40, (0, 0)), (2.0**-32, (1 << 30, -31)),
])
def test_quantize_multiplier_examples(real, expected):
    assert quantize_multiplier(real) == expected


@pytest.mark.parametrize("real", [-0.5, float("nan"), float("inf"), 2.0**30])
def test_quantize_multiplier_refuses(real):
    with pytest.raises(EdgeqError, match="multiplier"):
        quantize_multiplier(real)


def test_requantizes_like_float_rounding():
    """MBQM(acc, quantize_multiplier(r)) is acc * r rounded, to within one unit."""
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 20), 1 << 20, 1000).astype(np.int32)
    for real in (0.0003, 0.017, 0.5, 0.9999, 3.7):
        mult, shift = quantize_multiplier(real)
        got = multiply_by_quantized_multiplier(acc, mult, shift).astype(np.int64)
        assert np.all(np.abs(got - np.round(acc * real)) <= 1)
