"""Quantizers: weights (ternary absmean, binary sign + alpha, int4 group-wise, int8 per channel)
into edgeq.formats PackedTensors, activations (int8 absmax per row, static calibrated int8),
TFLite fixed-point requantization (fixedpoint) and torch QAT fake quantizers (qat)."""

from edgeq.quant.activations import asymmetric_qparams, calibrate_minmax, quantize_absmax_rows
from edgeq.quant.weights import (
    binary_sign,
    int4_groupwise,
    int8_per_channel,
    quantize_weight,
    ternary_absmean,
)

__all__ = ["asymmetric_qparams", "binary_sign", "calibrate_minmax", "int4_groupwise", "int8_per_channel",
           "quantize_absmax_rows", "quantize_weight", "ternary_absmean"]
