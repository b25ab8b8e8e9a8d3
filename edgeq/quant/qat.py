"""Quantization-aware training in torch: straight-through fake quantizers.

The weight fake quantizers compute, in torch on any device, exactly the values that
`edgeq.quant.quantize_weight(...).dequantize()` gives for the same weights (same fp32 operations,
same rounding, same tie rules; see edgeq.quant.weights), so a fine-tuned model packs to what it
was trained as. Conv weights are quantized in the packer's row order [Cout, KH*KW*Cin].

    prepare_qat(model, "t2")   # every Linear/Conv2d sees fake-quantized weights
    ...train...
    strip_qat(model)           # back to plain modules holding the latent float weights; the
                               # packer quantizes them to exactly the trained values
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS, ids
from edgeq.formats.q4 import GROUPS
from edgeq.quant.activations import asymmetric_qparams
from edgeq.quant.weights import EPS, FP16_TINY, PER


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized tensor. Backward: the gradient passes to the latent weight unchanged."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return q.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class _SignSTE(torch.autograd.Function):
    """sign with 0 -> +1; gradient passes where |x| <= 1 (the usual BNN straight-through sign)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x < 0, -1.0, 1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def _as_rows(w: torch.Tensor) -> torch.Tensor:
    """[Cout, Cin, KH, KW] -> [Cout, KH*KW*Cin] (the packer's NHWC row order); 2-D unchanged."""
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1) if w.dim() == 4 else w.reshape(w.shape[0], -1)


def _from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 4:
        cout, cin, kh, kw = like.shape
        return rows.reshape(cout, kh, kw, cin).permute(0, 3, 1, 2)
    return rows.reshape(like.shape)


def _pad_groups(rows: torch.Tensor, block: int) -> torch.Tensor:
    """[R, C] -> [R, n_blocks, block], padded with zeros like the formats pad rows."""
    r, c = rows.shape
    nb = -(-c // block)
    return F.pad(rows, (0, nb * block - c)).reshape(r, nb, block)


def ternary_rows(rows: torch.Tensor, per: str = "tensor") -> torch.Tensor:
    """BitNet absmean ternary fake quantization of [R, C] float32 rows (edgeq.quant.ternary_absmean)."""
    if per not in PER:
        raise EdgeqError(f"per must be one of {', '.join(PER)}, got '{per}'")
    r, c = rows.shape
    x = _pad_groups(rows, ids.T2_BLOCK)
    g = {"tensor": x.reshape(1, -1), "row": x.reshape(r, -1), "block": x}[per].abs()
    sums = g.sum(-1, dtype=torch.float64)
    amax = g.amax(-1)
    if per == "block":
        counts = torch.full((x.shape[1],), float(ids.T2_BLOCK), dtype=torch.float64, device=rows.device)
        counts[-1] = c - ids.T2_BLOCK * (x.shape[1] - 1)
    else:
        counts = float(r * c if per == "tensor" else c)
    scale = (sums / counts).clamp(min=EPS).float()
    snapped = (amax > 0) & ((g == 0) | (g == amax[..., None])).all(-1)
    scale = torch.where(snapped, amax, scale)
    if per == "block":
        scale = scale.clamp(min=FP16_TINY).half().float()
    s = scale[..., None] if per == "block" else scale.reshape(-1, 1, 1)
    q = torch.clamp(torch.round(x / s), -1, 1) * s
    return q.reshape(r, -1)[:, :c]


def binary_rows(rows: torch.Tensor) -> torch.Tensor:
    """sign (0 -> +1) x alpha, alpha = mean|W| per row (edgeq.quant.binary_sign)."""
    alpha = (rows.abs().sum(1, dtype=torch.float64) / rows.shape[1]).float()[:, None]
    return torch.where(rows < 0, -alpha, alpha)


def int4_rows(rows: torch.Tensor, group: int = 32, asymmetric: bool = False) -> torch.Tensor:
    """Group-wise int4 fake quantization (edgeq.quant.int4_groupwise; ggml Q4_0 rule if symmetric)."""
    if group not in GROUPS:
        raise EdgeqError(f"int4 group must be one of {', '.join(map(str, GROUPS))}, got {group}")
    r, c = rows.shape
    g = _pad_groups(rows, group)
    if asymmetric:
        lo = g.amin(-1, keepdim=True).clamp(max=0)
        hi = g.amax(-1, keepdim=True).clamp(min=0)
        d = (hi - lo) / 15
        inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
        z = torch.clamp(torch.round(-lo * inv), 0, 15)
        q = torch.clamp(torch.round(g * inv) + z, 0, 15) - z
    else:
        m = g.gather(-1, g.abs().argmax(-1, keepdim=True))  # first of the largest magnitudes
        d = m * -0.125
        inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
        q = torch.trunc(torch.clamp(g * inv + 8.5, max=15)) - 8
    return (q * d.half().float()).reshape(r, -1)[:, :c]


def int8_rows(rows: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 per row, s = absmax / 127 (edgeq.quant.int8_per_channel)."""
    scale = rows.abs().amax(1, keepdim=True) / 127
    div = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.clamp(torch.round(rows / div), -127, 127) * scale


class WeightFakeQuant(nn.Module):
    """A weight parametrization: the layer computes with the fake-quantized weight of `fmt`
    (edgeq's default recipe, as quantize_weight packs it); gradients reach the latent weight."""

    def __init__(self, fmt: str, group: int = 32) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise EdgeqError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
        self.fmt, self.group = fmt, group

    def extra_repr(self) -> str:
        return f"{self.fmt}" + (f", group={self.group}" if self.fmt == "q4" else "")

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            rows = _as_rows(w.detach().float())
            if self.fmt in ("t2", "t158"):
                q = ternary_rows(rows)
            elif self.fmt == "b1":
                q = binary_rows(rows)
            elif self.fmt == "q4":
                q = int4_rows(rows, self.group)
            else:
                q = int8_rows(rows)
            q = _from_rows(q, w).to(w.dtype)
        return _StraightThrough.apply(w, q)


class ActivationFakeQuant(nn.Module):
    """Static per-tensor int8 fake quantization with a moving-average min/max observer.

    In training the observed range follows each batch's min/max with `momentum`; the scale and
    zero point are TFLite's (edgeq.quant.asymmetric_qparams), the forward is QUANTIZE then
    DEQUANTIZE, and gradients pass inside the range (torch.fake_quantize_per_tensor_affine).
    """

    def __init__(self, momentum: float = 0.01) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(float("nan")))
        self.register_buffer("hi", torch.tensor(float("nan")))

    def qparams(self) -> tuple[float, int]:
        return asymmetric_qparams(float(self.lo), float(self.hi))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.min().float(), x.max().float()
                if torch.isnan(self.lo):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                else:
                    self.lo.lerp_(lo, self.momentum)
                    self.hi.lerp_(hi, self.momentum)
        if torch.isnan(self.lo):
            return x
        scale, zero = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, -128, 127)


class BinaryActivation(nn.Module):
    """sign(x) for binary networks (edgeq BINARIZE: x < 0 -> -1, else +1).

    Training uses the clipped straight-through gradient. In eval mode it is `torch.sign`, which
    torch.export records as aten.sign and edgeq imports as BINARIZE (they differ only at x == 0).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return _SignSTE.apply(x)
        return torch.sign(x)


def _quantize_input(module: nn.Module, args: tuple) -> tuple:
    return (module.edgeq_input_quant(args[0]),) + tuple(args[1:])


def _layers(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}


def prepare_qat(model: nn.Module, fmt: str | Mapping[str, str], group: int = 32,
                activations: bool = False) -> nn.Module:
    """Fake-quantizes the weights of every Linear/Conv2d in place (`fmt` one format for all, or
    {layer name: format} for some); `activations` also fake-quantizes each such layer's input to
    static int8. Returns the model."""
    layers = _layers(model)
    plan = dict(fmt) if isinstance(fmt, Mapping) else dict.fromkeys(layers, fmt)
    unknown = sorted(set(plan) - set(layers))
    if unknown:
        raise EdgeqError(f"no Linear/Conv2d layer named {', '.join(unknown)}; layers: {', '.join(layers)}")
    for name, layer_fmt in plan.items():
        module = layers[name]
        parametrize.register_parametrization(module, "weight", WeightFakeQuant(layer_fmt, group))
        if activations:
            module.edgeq_input_quant = ActivationFakeQuant()
            module.edgeq_input_hook = module.register_forward_pre_hook(_quantize_input)
    return model


def strip_qat(model: nn.Module) -> nn.Module:
    """Removes the fake quantizers, leaving plain modules with the latent float weights (which
    quantize_weight maps to exactly the values the model trained with). Returns the model."""
    for module in _layers(model).values():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        if hasattr(module, "edgeq_input_hook"):
            module.edgeq_input_hook.remove()
            del module.edgeq_input_hook
            del module.edgeq_input_quant
    return model
