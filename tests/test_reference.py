"""Reference executor and packer: integer semantics, the digits accuracy targets, binary path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import digits_blob_graph
from torch import nn

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.formats import ids as F
from edgeq.importers.float_graph import run_float
from edgeq.importers.torch_export import from_module
from edgeq.packer import Recipe, pack


def accuracy(graph, x, y) -> float:
    return float((reference.run(graph, [x])[0].argmax(1) == y).mean())


def test_quantized_linear_tracks_float():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 8)).eval()
    x = np.random.default_rng(1).standard_normal((64, 40)).astype(np.float32)
    fg = from_module(net, torch.from_numpy(x[:1]))
    want = run_float(fg, x)
    span = want.max() - want.min()
    for fmt, tol in [("i8", 0.03), ("q4", 0.12)]:
        got = reference.run(pack(fg, x, Recipe(fmt)), [x])[0]
        assert np.abs(got - want).max() < tol * span, fmt


def test_quantized_conv_net_tracks_float():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                        nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 5)).eval()
    x = np.random.default_rng(2).standard_normal((32, 8, 8, 3)).astype(np.float32)
    fg = from_module(net, torch.from_numpy(x[:1].transpose(0, 3, 1, 2)))
    want = run_float(fg, x)
    got = reference.run(pack(fg, x, Recipe("i8")), [x])[0]
    assert np.abs(got - want).max() < 0.05 * (want.max() - want.min())


def test_relu_is_fused_into_requant_clamp():
    net = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    x = np.random.default_rng(3).standard_normal((8, 16)).astype(np.float32)
    g = pack(from_module(net, torch.from_numpy(x[:1])), x, Recipe("i8"))
    ops = [op.op for op in g.ops]
    assert L.OP_RELU not in ops
    first = next(op for op in g.ops if op.op == L.OP_LINEAR)
    assert first.attrs[L.ATTR_ACT_MIN] == g.tensors[first.outputs[0]].qzero


def test_tensor_used_before_produced_is_refused():
    net = nn.Sequential(nn.Linear(4, 4)).eval()
    x = np.ones((2, 4), np.float32)
    g = pack(from_module(net, torch.from_numpy(x[:1])), x, Recipe("i8"))
    g.ops.reverse()
    with pytest.raises(Exception, match="used before it is produced"):
        reference.run(g, [x])


@pytest.mark.parametrize("fmt", ["t2", "t158", "b1", "q4", "i8"])
def test_digits_mlp_every_format_packs_and_runs(fmt):
    graph, _, x_test, y_test = digits_blob_graph("mlp_fp32", fmt)
    acc = accuracy(graph, x_test, y_test)
    assert acc > (0.5 if fmt in ("t2", "t158", "b1") else 0.9)
    outs = graph.test_tensors(L.TENSOR_TEST_OUTPUT)
    ins = graph.test_tensors(L.TENSOR_TEST_INPUT)
    np.testing.assert_array_equal(reference.run(graph, [graph.tensors[ins[0]].array])[0],
                                  graph.tensors[outs[0]].array)


def test_ternary_qat_cnn_within_1_5_points_of_fp32():
    graph, _, x_test, y_test = digits_blob_graph("cnn_t2_qat", "t2")
    _, fp32_fg, _, _ = digits_blob_graph("cnn_fp32", "i8")
    fp32 = float((run_float(fp32_fg, x_test).argmax(1) == y_test).mean())
    assert accuracy(graph, x_test, y_test) >= fp32 - 0.015


def test_fully_binary_mlp_runs_xnor_path():
    graph, fg, x_test, y_test = digits_blob_graph("bnn_b1_qat", "b1", first_last_i8=True)
    kinds = [op.op for op in graph.ops]
    assert kinds.count(L.OP_BINARIZE) == 2
    xnor = [op for op in graph.ops if op.op == L.OP_LINEAR and graph.tensors[op.inputs[0]].format == F.FMT_B1]
    assert len(xnor) == 2
    assert graph.tensors[xnor[0].inputs[1]].format == F.FMT_B1  # binary weights x binary activations
    assert graph.tensors[xnor[1].inputs[1]].format == F.FMT_I8  # int8 last layer on binary activations
    fp32 = float((run_float(fg, x_test).argmax(1) == y_test).mean())
    assert accuracy(graph, x_test, y_test) >= fp32 - 0.03
