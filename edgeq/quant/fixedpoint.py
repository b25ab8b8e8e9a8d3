"""TFLite/gemmlowp fixed-point requantization, vectorised over numpy arrays (int64 intermediates).

`multiply_by_quantized_multiplier` is TFLite's MultiplyByQuantizedMultiplier (the default,
double-rounding one): SaturatingRoundingDoublingHighMul then RoundingDivideByPOT, shift > 0
being a left shift. One definition where TFLite is undefined: `x << left_shift` overflowing int32
saturates to the int32 range (TFLite's C++ overflows a signed int). The C runtime does the same.
"""

from __future__ import annotations

import math

import numpy as np

from edgeq.errors import EdgeqError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real >= 0 -> (Q31 multiplier in [2^30, 2^31), shift) with real ~= mult * 2^(shift - 31).

    TFLite's QuantizeMultiplier: frexp, round half away from zero, 2^31 -> 2^30 with shift + 1,
    shifts below -31 flush to (0, 0). Shifts above 30 cannot be applied to int32 and are refused.
    """
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise EdgeqError(f"requantization multiplier {real} must be finite and >= 0")
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    v = q * (1 << 31)  # exact: a power-of-two scaling
    q_fixed = math.floor(v)
    q_fixed += v - q_fixed >= 0.5
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise EdgeqError(f"requantization multiplier {real} is too large (>= 2^30)")
    return int(q_fixed), int(shift)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (elementwise, int64 result)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    t = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C integer division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero (exponent 0..31)."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier, broadcasting x, multiplier and shift; int32 result."""
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    shifted = np.clip(np.asarray(x, np.int64) << left, INT32_MIN, INT32_MAX)
    high = saturating_rounding_doubling_high_mul(shifted, multiplier)
    return rounding_divide_by_pot(high, np.maximum(-shift, 0)).astype(np.int32)
