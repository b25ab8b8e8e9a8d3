"""QAT: the torch fake quantizers give exactly what packing gives, gradients go straight through,
prepare/strip leave a model the packer quantizes to the trained values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from edgeq.errors import EdgeqError
from edgeq.quant import int4_groupwise, qat, quantize_weight, ternary_absmean

SETTINGS = settings(max_examples=25, deadline=None)
shapes = st.tuples(st.integers(1, 10), st.integers(1, 700), st.integers(0, 2**32 - 1))


def _weights(seed, rows, cols):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, cols)) * rng.uniform(1e-3, 5)).astype(np.float32)


@SETTINGS
@given(shape=shapes)
def test_fake_quant_equals_packed_then_dequantized(shape):
    rows, cols, seed = shape
    w = _weights(seed, rows, cols)
    t = torch.from_numpy(w)
    for per in ("tensor", "row", "block"):
        assert np.array_equal(qat.ternary_rows(t, per).numpy(), ternary_absmean(w, per).dequantize())
    assert np.array_equal(qat.binary_rows(t).numpy(), quantize_weight(w, "b1").dequantize())
    assert np.array_equal(qat.int8_rows(t).numpy(), quantize_weight(w, "i8").dequantize())
    for group in (32, 64, 128):
        for asym in (False, True):
            fake = qat.int4_rows(t, group, asym).numpy()
            assert np.array_equal(fake, int4_groupwise(w, group, asym).dequantize())


def test_int4_ties_pick_the_first_like_numpy():
    w = np.zeros((2, 32), np.float32)
    w[0, :4] = [0.5, -2.0, 2.0, 1.0]
    w[1, :4] = [0.5, 2.0, -2.0, 1.0]
    fake = qat.int4_rows(torch.from_numpy(w)).numpy()
    assert np.array_equal(fake, int4_groupwise(w).dequantize())
    assert fake[0, 1] == -2.0 and fake[1, 1] == 2.0


@pytest.mark.parametrize("fmt", ["t2", "t158", "b1", "q4", "i8"])
def test_layers_train_with_what_the_packer_packs(fmt):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    qat.prepare_qat(model, fmt, group=64)
    x = torch.randn(4, 3, 6, 6)
    model(x).square().sum().backward()
    conv, lin = model[0], model[3]
    # the conv is quantized in the packer's [Cout, KH*KW*Cin] row order
    rows = conv.weight.detach().permute(0, 2, 3, 1).reshape(8, -1).numpy()
    latent = conv.parametrizations.weight.original.detach().permute(0, 2, 3, 1).reshape(8, -1).numpy()
    assert np.array_equal(rows, quantize_weight(latent, fmt, 64).dequantize())
    trained = lin.weight.detach().numpy().copy()
    assert np.array_equal(trained,
                          quantize_weight(lin.parametrizations.weight.original.detach().numpy(), fmt, 64).dequantize())
    assert conv.parametrizations.weight.original.grad is not None
    qat.strip_qat(model)
    assert not any(hasattr(m, "parametrizations") for m in model.modules())
    # the stripped model holds the latent weights, and packing them gives what the model trained with
    assert np.array_equal(quantize_weight(lin.weight.detach().numpy(), fmt, 64).dequantize(), trained)


def test_gradient_is_straight_through():
    lin = nn.Linear(300, 5, bias=False)
    qat.prepare_qat(lin, {"": "t2"})
    x = torch.randn(7, 300)
    g = torch.randn(7, 5)
    (lin(x) * g).sum().backward()
    assert torch.allclose(lin.parametrizations.weight.original.grad, g.T @ x, atol=1e-5)


def test_strip_keeps_latent_weights_and_removes_hooks():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 4))
    latent = model[0].weight.detach().clone()
    qat.prepare_qat(model, {"0": "b1"}, activations=True)
    assert qat.parametrize.is_parametrized(model[0], "weight")
    assert not qat.parametrize.is_parametrized(model[1], "weight")
    model.train()
    model(torch.randn(8, 16))
    assert torch.isfinite(model[0].edgeq_input_quant.lo)
    qat.strip_qat(model)
    assert torch.equal(model[0].weight, latent)
    assert not hasattr(model[0], "edgeq_input_quant") and not model[0]._forward_pre_hooks


def test_prepare_errors():
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(EdgeqError, match="no Linear/Conv2d layer named fc9"):
        qat.prepare_qat(model, {"fc9": "t2"})
    with pytest.raises(EdgeqError, match="unknown format 'q2'"):
        qat.prepare_qat(model, "q2")


def test_activation_fake_quant_observes_and_snaps_to_the_int8_grid():
    fq = qat.ActivationFakeQuant(momentum=0.5)
    x = torch.linspace(-1, 3, 101, requires_grad=True)
    assert torch.equal(fq.eval()(x), x)  # nothing observed yet: pass-through
    fq.train()
    y = fq(x)
    assert (float(fq.lo), float(fq.hi)) == (-1.0, 3.0)
    scale, zero = fq.qparams()
    q = torch.round(y.detach() / scale) + zero
    assert torch.allclose((q - zero) * scale, y.detach(), atol=1e-6)
    assert torch.all((q >= -128) & (q <= 127))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    fq(torch.tensor([-3.0, 3.0]))
    assert float(fq.lo) == -2.0  # moving average


def test_binary_activation():
    act = qat.BinaryActivation()
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = act.train()(x)
    assert y.tolist() == [-1, -1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 0]
    assert act.eval()(x).tolist() == [-1, -1, 0, 1, 1]
    ep = torch.export.export(nn.Sequential(nn.Linear(4, 4), qat.BinaryActivation()).eval(), (torch.randn(1, 4),))
    assert "aten.sign.default" in {str(n.target) for n in ep.graph.nodes}
