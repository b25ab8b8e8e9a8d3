"""torch modules that arrive quantized — BitNet `BitLinear` and torchao int4/int8 weights — imported with
their own codes and scales.

Each quantized linear is swapped (in a copy of the module) for a plain nn.Linear holding exactly its
dequantized weight, so torch.export sees ordinary linears; the codes and scales are then attached to
the float graph's node (`params["prequantized"]`), which the packer stores as is:

| module weight | edgeq |
|---|---|
| BitLinear (absmean ternary, one scale) | T2 (or T158), the scale per row (SCALE_ROW fp32, exact) |
| torchao int4, PerGroup(32/64/128) (IntxWeightOnlyConfig, Int8DynamicActivationIntxWeightConfig) | Q4 with that group, scales as fp16 (exact when the scales are fp16, e.g. `scale_dtype=torch.float16`; else a warning gives the rounding) |
| torchao int4 or int8, PerAxis(0) | I8 with the per-row fp32 scales (exact) |

Activations are not imported: BitLinear's per-token absmax and 8da4w's dynamic int8 are run-time
quantizers; edgeq calibrates static per-tensor int8 activations at pack time instead.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.formats.q4 import GROUPS
from edgeq.importers.float_graph import FloatGraph
from edgeq.importers.torch_export import from_module
from edgeq.quant.bitlinear import BitLinear


def _torchao_parts(w) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]] | None:
    """(qdata, scale, zero_point, block_size) of a torchao IntxUnpackedToInt8Tensor weight, else None."""
    if not all(hasattr(w, k) for k in ("qdata", "scale", "zero_point", "block_size")):
        return None
    return (w.qdata.detach().numpy().astype(np.int64), w.scale.detach().float().numpy(),
            w.zero_point.detach().numpy().astype(np.int64), tuple(int(b) for b in w.block_size))


def _packed(name: str, m: nn.Linear, ternary: str) -> tuple | None:
    """(PackedTensor builder taking a column order, dequantized float weight, note), None for a float linear."""
    if isinstance(m, BitLinear):
        with torch.no_grad():
            codes, scale = m.ternary_weight()
        codes, s = codes.numpy().astype(np.int64), np.float32(scale.item())
        return (lambda cols: FORMATS[ternary].pack(codes[:, cols], s)), codes.astype(np.float32) * s, None
    return _torchao_packed(name, m.weight)


def _torchao_packed(name: str, weight) -> tuple | None:
    parts = _torchao_parts(weight)
    if parts is None:
        return None
    q, scale, zp, block = parts
    rows, k = q.shape
    if block == (1, k):  # per row
        if np.any(zp != 0):
            raise EdgeqError(f"{name}: asymmetric per-row torchao weights are not supported (edgeq I8 is symmetric)")
        s = scale.reshape(rows).astype(np.float32)
        return (lambda cols: FORMATS["i8"].pack(q[:, cols], s)), (q * s[:, None]).astype(np.float32), None
    group = block[1]
    if block[0] != 1 or group not in GROUPS or q.min() < -8 or q.max() > 7:
        raise EdgeqError(f"{name}: torchao weight with block {list(block)} and values {q.min()}..{q.max()} has no "
                         f"edgeq format (int4 groups of {', '.join(map(str, GROUPS))} or per-row int4/int8)")
    s16 = scale.astype(np.float16)
    note = None
    if np.any(s16.astype(np.float32) != scale):
        err = float(np.max(np.abs(s16.astype(np.float32) - scale) / np.maximum(np.abs(scale), 1e-30)))
        note = f"{name}: torchao fp32 group scales stored as fp16 (edgeq Q4), max relative error {err:.3g}"
    zeros = (zp + 8).astype(np.uint8) if np.any(zp != 0) else None
    deq = ((q - zp.repeat(group, axis=1)) * s16.astype(np.float32).repeat(group, axis=1)).astype(np.float32)

    def build(cols):
        if not np.array_equal(cols, np.arange(k)):
            raise EdgeqError(f"{name}: a group-quantized linear after a 4-D flatten would need its columns "
                             "reordered across groups (NCHW -> NHWC); not supported")
        values = q - zp.repeat(group, axis=1)  # edgeq stores u = values + zero, torchao q = u - 8, zero = zp + 8
        return FORMATS["q4"].pack(values, s16, zeros=zeros, scale_kind=F.SCALE_BLOCK, block=group)

    return build, deq, note


def from_quantized_module(module: nn.Module, example_input: torch.Tensor, ternary: str = "t2") -> FloatGraph:
    """A module with BitLinear / torchao-quantized linears (and any ordinary layers) -> FloatGraph whose
    quantized linears carry their own codes and scales (`params["prequantized"]`)."""
    if ternary not in ("t2", "t158"):
        raise EdgeqError(f"ternary format must be t2 or t158, got {ternary!r}")
    plain = copy.deepcopy(module).eval()
    found: dict[str, tuple] = {}
    notes = []
    for name, m in list(plain.named_modules()):
        if not isinstance(m, nn.Linear):
            continue
        got = _packed(name or "linear", m, ternary)
        if got is None:
            continue
        build, deq, note = got
        linear = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(deq))
            if m.bias is not None:
                linear.bias.copy_(m.bias.detach().float())
        parent, _, child = name.rpartition(".")
        setattr(plain.get_submodule(parent) if parent else plain, child, linear)
        found[f"{name}.weight"] = (build, deq)
        notes += [note] if note else []
    if not found:
        raise EdgeqError("no BitLinear or torchao-quantized linear layers in the module: use "
                         "edgeq.importers.torch_export.from_module for float models")
    fg = from_module(plain, example_input)
    _attach(fg, found)
    fg.source = f"{type(module).__name__} (pre-quantized: BitLinear/torchao)"
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return fg


def _attach(fg: FloatGraph, found: dict[str, tuple]) -> None:
    """Puts each weight's codes and scales on the linear node that uses it (matched by state-dict name)."""
    for node in fg.nodes:
        key = node.attrs.get("weight_param") if node.kind == "linear" else None
        if key not in found:
            continue
        build, deq = found.pop(key)
        cols = node.attrs.get("columns", np.arange(deq.shape[1]))
        # equal up to fp16 scale rounding (torchao fp32 group scales); a folded batch norm changes far more
        if not np.allclose(node.params["weight"], deq[:, cols], rtol=1e-3, atol=1e-7):
            raise EdgeqError(f"{key}: the weight changed during import (a batch norm folded into it?), so its "
                             "quantization cannot be kept")
        node.params["weight"] = deq[:, cols]  # calibrate with exactly the weights that get stored
        node.params["prequantized"] = build(cols)
    if found:
        raise EdgeqError(f"quantized weight(s) {', '.join(found)} are not used by a linear op in the exported graph")


def attach_prequantized(fg: FloatGraph, weights: dict) -> None:
    """For a saved .pt2 holding torchao weights: state-dict name -> torchao tensor, attached to their linears."""
    found = {}
    for key, w in weights.items():
        build, deq, note = _torchao_packed(key.removesuffix(".weight"), w)
        found[key] = (build, deq)
        if note:
            warnings.warn(note, stacklevel=3)
    _attach(fg, found)
