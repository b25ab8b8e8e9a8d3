"""BitNet b1.58 `BitLinear`: absmean ternary weights and per-token absmax int8 activations.

The module trains with straight-through estimators (the float latent weights get the gradient) and
is imported by edgeq with its own ternary codes and scale (edgeq.importers.torch_quantized), not
re-quantized. Its activation quantizer is dynamic (per token, at run time); edgeq's runtime uses
static per-tensor int8 activations instead, calibrated at pack time.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

EPS = 1e-5  # the BitNet reference clamps both scales here


class BitLinear(nn.Linear):
    def ternary_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes in {-1, 0, 1}, scale) with weight ~= codes * scale; scale = mean|W| (absmean)."""
        scale = self.weight.abs().mean().clamp(min=EPS)
        return (self.weight / scale).round().clamp(-1, 1), scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes, scale = self.ternary_weight()
        w = self.weight + (codes * scale - self.weight).detach()
        x_scale = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=EPS)
        xq = x + ((x * x_scale).round().clamp(-128, 127) / x_scale - x).detach()
        return F.linear(xq, w, self.bias)
