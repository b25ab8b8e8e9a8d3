"""Quantization-aware training in torch: straight-through fake quantizers whose forward equals
what `edgeq.quant.quantize_weight` then packs, so a fine-tuned model packs without surprise."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def _ste(w: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return w + (q - w).detach()


def _as_rows(w: torch.Tensor) -> torch.Tensor:
    """[Cout, Cin, KH, KW] -> [Cout, KH*KW*Cin] (the packer's NHWC row order); linear unchanged."""
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1) if w.dim() == 4 else w.reshape(w.shape[0], -1)


def _from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 4:
        cout, cin, kh, kw = like.shape
        return rows.reshape(cout, kh, kw, cin).permute(0, 3, 1, 2)
    return rows.reshape(like.shape)


def fake_ternary(w: torch.Tensor) -> torch.Tensor:
    scale = w.abs().mean().clamp(min=1e-8)
    return _ste(w, (w / scale).round().clamp(-1, 1) * scale)


def fake_binary(w: torch.Tensor) -> torch.Tensor:
    rows = _as_rows(w)
    alpha = rows.abs().mean(dim=1, keepdim=True).clamp(min=1e-8)
    q = torch.where(rows < 0, -1.0, 1.0) * alpha
    return _ste(w, _from_rows(q, w))


def fake_int4(w: torch.Tensor, group: int = 32) -> torch.Tensor:
    rows = _as_rows(w)
    r, c = rows.shape
    nb = -(-c // group)
    padded = torch.nn.functional.pad(rows, (0, nb * group - c)).reshape(r, nb, group)
    d = (padded.abs().amax(dim=2, keepdim=True) / 7).half().float()
    inv = torch.where(d > 0, 1 / d.clamp(min=1e-12), torch.zeros_like(d))
    q = ((padded * inv).round().clamp(-8, 7) * d).reshape(r, -1)[:, :c]
    return _ste(w, _from_rows(q, w))


def fake_int8(w: torch.Tensor) -> torch.Tensor:
    rows = _as_rows(w)
    scale = (rows.abs().amax(dim=1, keepdim=True) / 127).clamp(min=1e-8)
    q = (rows / scale).round().clamp(-127, 127) * scale
    return _ste(w, _from_rows(q, w))


FAKE = {"t2": fake_ternary, "t158": fake_ternary, "b1": fake_binary, "q4": fake_int4, "i8": fake_int8}


class FakeQuant(nn.Module):
    """A weight parametrization: the module sees the quantized weight, gradients reach the latent one."""

    def __init__(self, fmt: str, group: int = 32) -> None:
        super().__init__()
        if fmt not in FAKE:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FAKE)}")
        self.fmt, self.group = fmt, group

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_int4(w, self.group) if self.fmt == "q4" else FAKE[self.fmt](w)


class BinaryActivation(nn.Module):
    """sign(x) for binary networks: straight-through (clipped) gradient in training, torch.sign when
    exported, which edgeq imports as a BINARIZE op (x < 0 -> -1, else +1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            hard = torch.where(x < 0, -1.0, 1.0)
            return x.clamp(-1, 1) + (hard - x.clamp(-1, 1)).detach()
        return torch.sign(x)


def _layers(model: nn.Module):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def prepare_qat(model: nn.Module, fmt: str | dict[str, str], group: int = 32) -> nn.Module:
    """Fake-quantizes the weights of every Linear/Conv2d (`fmt` a format, or {layer name: format})."""
    for name, module in _layers(model):
        layer_fmt = fmt.get(name) if isinstance(fmt, dict) else fmt
        if layer_fmt:
            parametrize.register_parametrization(module, "weight", FakeQuant(layer_fmt, group))
    return model


def strip_qat(model: nn.Module) -> nn.Module:
    """Removes the fake quantizers, keeping the latent float weights the packer will quantize."""
    for _, module in _layers(model):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
    return model
