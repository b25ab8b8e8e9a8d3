"""Models that arrive quantized from torch: BitNet BitLinear and torchao int4/int8 linears are imported
with their own codes and scales (compared here value for value), not re-quantized by edgeq."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgeq import reference
from edgeq.errors import EdgeqError
from edgeq.importers.torch_quantized import from_quantized_module
from edgeq.packer import Recipe, pack
from edgeq.quant.bitlinear import BitLinear


def weights(graph) -> dict:
    return {t.name.removesuffix(".weight"): t.packed for t in graph.tensors if t.packed is not None}


class BitCNN(nn.Module):
    """conv -> flatten (NCHW -> NHWC column reorder) -> BitLinear -> BitLinear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = BitLinear(4 * 8 * 8, 32)
        self.fc2 = BitLinear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(torch.relu(self.conv(x)), 1))))


@pytest.mark.parametrize("ternary", ["t2", "t158"])
def test_bitlinear_codes_and_scale_are_the_modules(ternary):
    torch.manual_seed(0)
    m = BitCNN().eval()
    with torch.no_grad():
        m.fc1.weight.mul_(3.7)  # a scale edgeq's own absmean of the float weights would not give back
    fg = from_quantized_module(m, torch.zeros(1, 1, 8, 8), ternary=ternary)
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype(np.float32)
    g = pack(fg, x, Recipe("i8"))
    w = weights(g)
    assert g.metadata["recipe"]["layers"] == {"conv2d": "i8", "linear": ternary, "linear_1": ternary}
    for layer, mod in (("linear", m.fc1), ("linear_1", m.fc2)):
        with torch.no_grad():
            codes, scale = mod.ternary_weight()
        codes = codes.numpy()
        if layer == "linear":  # torch flattens C,H,W; edgeq's NHWC graph stores the columns as H,W,C
            codes = codes.reshape(32, 4, 8, 8).transpose(0, 2, 3, 1).reshape(32, -1)
        np.testing.assert_array_equal(w[layer].int_values()[:, : codes.shape[1]], codes)
        np.testing.assert_array_equal(w[layer].scales, np.full(codes.shape[0], scale.item(), np.float32))
    assert w["conv2d"].name == "i8"
    # and it computes the module's function (int8 activations: close, same answers)
    out = reference.run(g, [x])[0]
    with torch.no_grad():
        ref = m(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.9


torchao = pytest.importorskip("torchao")


def _torchao_mlp(config) -> nn.Module:
    from torchao.quantization import quantize_

    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10)).eval()
    quantize_(m, config)
    return m


def _configs():
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_primitives import MappingType

    return {
        "int4wo-g32-fp16": (IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32),
                                                 scale_dtype=torch.float16), "q4"),
        "int4wo-g32-asym": (IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32),
                                                 mapping_type=MappingType.ASYMMETRIC,
                                                 scale_dtype=torch.float16), "q4"),
        "8da4w-g32-fp16": (Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                                 weight_granularity=PerGroup(32),
                                                                 weight_scale_dtype=torch.float16), "q4"),
        "8da4w-per-row": (Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                                weight_granularity=PerAxis(0)), "i8"),
        "int8wo-per-row": (IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0)), "i8"),
    }


@pytest.mark.parametrize("name", ["int4wo-g32-fp16", "int4wo-g32-asym", "8da4w-g32-fp16", "8da4w-per-row",
                                  "int8wo-per-row"])
def test_torchao_codes_and_scales_are_the_modules(name):
    config, fmt = _configs()[name]
    m = _torchao_mlp(config)
    fg = from_quantized_module(m, torch.zeros(1, 64))
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    g = pack(fg, x, Recipe("t2"))  # the recipe's format does not touch pre-quantized layers
    w = weights(g)
    for layer, mod in (("linear", m[0]), ("linear_1", m[2])):
        p = w[layer]
        q, scale, zp = (t.detach() for t in (mod.weight.qdata, mod.weight.scale, mod.weight.zero_point))
        assert p.name == fmt
        if fmt == "q4":
            assert p.block == 32
            values = (q.to(torch.int16) - zp.to(torch.int16).repeat_interleave(32, dim=1)).numpy()
            np.testing.assert_array_equal(p.int_values()[:, : q.shape[1]], values)
            np.testing.assert_array_equal(p.scales, scale.numpy())  # fp16 scales, bit for bit
            if "asym" in name:
                assert p.zeros is not None and np.array_equal(p.zeros, (zp + 8).numpy())
        else:
            np.testing.assert_array_equal(p.int_values()[:, : q.shape[1]], q.numpy())
            np.testing.assert_array_equal(p.scales, scale.float().numpy().reshape(-1))
        np.testing.assert_allclose(p.dequantize()[:, : q.shape[1]], mod.weight.dequantize().float().numpy(),
                                   rtol=1e-6, atol=1e-7)
    out = reference.run(g, [x])[0]
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()


def test_fp32_group_scales_warn_and_errors():
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    m = _torchao_mlp(IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)))
    with pytest.warns(UserWarning, match="stored as fp16"):
        from_quantized_module(m, torch.zeros(1, 64))
    with pytest.raises(EdgeqError, match="no BitLinear or torchao"):
        from_quantized_module(nn.Sequential(nn.Linear(4, 2)), torch.zeros(1, 4))
    m = _torchao_mlp(IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(16)))
    with pytest.raises(EdgeqError, match="block \\[1, 16\\]"):
        from_quantized_module(m, torch.zeros(1, 64))


def test_saved_torchao_program_packs_from_the_cli(tmp_path):
    """`edgeq pack model.pt2` of a saved torchao-quantized program keeps its codes and scales too."""
    from click.testing import CliRunner
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig
    from torchao.quantization.granularity import PerGroup

    from edgeq.blob import read_blob
    from edgeq.cli import main

    m = _torchao_mlp(Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(32),
                                                           weight_scale_dtype=torch.float16))
    torch.export.save(torch.export.export(m, (torch.zeros(1, 64),)), str(tmp_path / "m.pt2"))
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).random((32, 64)).astype(np.float32))
    res = CliRunner().invoke(main, ["pack", str(tmp_path / "m.pt2"), "--calib", str(tmp_path / "calib.npz"),
                                    "-o", str(tmp_path / "m.edgeq")])
    assert res.exit_code == 0, res.output
    w = weights(read_blob(tmp_path / "m.edgeq").graph)
    for layer, mod in (("linear", m[0]), ("linear_1", m[2])):
        q, scale = mod.weight.qdata.numpy(), mod.weight.scale.numpy()
        assert w[layer].name == "q4"
        np.testing.assert_array_equal(w[layer].int_values()[:, : q.shape[1]], q)
        np.testing.assert_array_equal(w[layer].scales, scale)
