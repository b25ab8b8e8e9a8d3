"""Quantizers: weights (ternary, binary, int4, int8), activations (absmax rows, static calibration)."""

from edgeq.quant.activations import calibrate_minmax, quantize_absmax_rows
from edgeq.quant.weights import binary_sign, int4_groupwise, int8_per_channel, quantize_weight, ternary_absmean

__all__ = ["binary_sign", "calibrate_minmax", "int4_groupwise", "int8_per_channel", "quantize_absmax_rows",
           "quantize_weight", "ternary_absmean"]
