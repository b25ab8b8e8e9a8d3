"""torch.export importer: the float graph (NHWC, BN folded) computes what torch computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgeq.errors import EdgeqError
from edgeq.importers.float_graph import run_float
from edgeq.importers.torch_export import from_module, from_pt2


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c2 = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.c1(x)))
        y = torch.relu(self.dw(y)) + y
        y = nn.functional.avg_pool2d(self.c2(y), 2, 2, 1, count_include_pad=False)
        y = nn.functional.max_pool2d(y, 2, 1)
        return self.fc(torch.flatten(y, 1)).softmax(-1)


def test_float_graph_matches_torch():
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics so folding is exercised
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(4, 3, 11, 11)
    fg = from_module(net, x[:1])
    assert [n.kind for n in fg.nodes] == ["input", "conv2d", "relu", "dwconv2d", "relu", "add", "conv2d",
                                          "avgpool2d", "maxpool2d", "flatten", "linear", "softmax"]
    got = run_float(fg, x.numpy().transpose(0, 2, 3, 1))
    np.testing.assert_allclose(got, net(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_pt2_file_round_trip(tmp_path):
    net = nn.Sequential(nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 3))
    ep = torch.export.export(net.eval(), (torch.zeros(1, 10),))
    path = tmp_path / "m.pt2"
    torch.export.save(ep, str(path))
    fg = from_pt2(path)
    x = np.random.default_rng(0).standard_normal((5, 10)).astype(np.float32)
    np.testing.assert_allclose(run_float(fg, x), net(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_unsupported_op_names_op_node_and_list():
    class Bad(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(EdgeqError) as err:
        from_module(Bad(), torch.zeros(1, 4))
    msg = str(err.value)
    assert "aten.sigmoid" in msg and "node 'sigmoid'" in msg and "linear" in msg and "conv2d" in msg


def test_grouped_conv_refused():
    with pytest.raises(EdgeqError, match="grouped convolution"):
        from_module(nn.Conv2d(4, 4, 3, groups=2), torch.zeros(1, 4, 6, 6))


def test_not_a_pt2_file(tmp_path):
    bad = tmp_path / "x.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EdgeqError, match="not a torch.export"):
        from_pt2(bad)
    with pytest.raises(EdgeqError, match="no such model file"):
        from_pt2(tmp_path / "missing.pt2")
