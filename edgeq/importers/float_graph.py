"""The float graph an importer produces, and a numpy executor for it (NHWC).

The executor gives the fp32 accuracy and the calibration ranges the packer needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("input", "linear", "conv2d", "dwconv2d", "maxpool2d", "avgpool2d", "relu", "add", "flatten",
         "softmax", "sign")


@dataclass
class FNode:
    """One float op. conv weights are [Cout, KH, KW, Cin]; depthwise [C, KH, KW]; linear [Cout, K]."""

    kind: str
    name: str
    inputs: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


@dataclass
class FloatGraph:
    nodes: list[FNode]
    input_shape: tuple[int, ...]  # NHWC or [N, K], batch 1
    output: str
    source: str = ""

    def node(self, name: str) -> FNode:
        return next(n for n in self.nodes if n.name == name)

    def consumers(self, name: str) -> list[FNode]:
        return [n for n in self.nodes if name in n.inputs]


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads, fill: float) -> np.ndarray:
    """NHWC -> [N, OH, OW, KH, KW, C] windows."""
    pt, pl, pb, pr = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))  # N, H', W', C, kh, kw
    win = win[:, : sh * oh : sh, : sw * ow : sw]
    return np.moveaxis(win, 3, 5)


def _run_node(n: FNode, xs: list[np.ndarray]) -> np.ndarray:
    x = xs[0]
    a = n.attrs
    if n.kind == "linear":
        return x @ n.params["weight"].T + n.params["bias"]
    if n.kind == "conv2d":
        w = n.params["weight"]
        win = _windows(x, w.shape[1], w.shape[2], a["stride"][0], a["stride"][1], a["pads"], 0.0)
        return np.einsum("nhwijc,oijc->nhwo", win, w, optimize=True) + n.params["bias"]
    if n.kind == "dwconv2d":
        w = n.params["weight"]
        win = _windows(x, w.shape[1], w.shape[2], a["stride"][0], a["stride"][1], a["pads"], 0.0)
        return np.einsum("nhwijc,cij->nhwc", win, w, optimize=True) + n.params["bias"]
    if n.kind == "maxpool2d":
        win = _windows(x, *a["kernel"], *a["stride"], a["pads"], -np.inf)
        return win.max(axis=(3, 4))
    if n.kind == "avgpool2d":
        ones = np.ones(x.shape[:3] + (1,), x.dtype)
        total = _windows(x, *a["kernel"], *a["stride"], a["pads"], 0.0).sum(axis=(3, 4))
        count = _windows(ones, *a["kernel"], *a["stride"], a["pads"], 0.0).sum(axis=(3, 4))
        return total / count
    if n.kind == "relu":
        return np.maximum(x, 0)
    if n.kind == "add":
        return x + xs[1]
    if n.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if n.kind == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if n.kind == "sign":
        return np.where(x < 0, -1.0, 1.0).astype(x.dtype)
    raise ValueError(n.kind)


def run_float(graph: FloatGraph, x: np.ndarray, keep_all: bool = False):
    """Runs the float graph on NHWC/[N, K] input `x` (float32)."""
    values = {}
    for n in graph.nodes:
        if n.kind == "input":
            values[n.name] = np.asarray(x, np.float32)
        else:
            values[n.name] = _run_node(n, [values[i] for i in n.inputs]).astype(np.float32)
    return values if keep_all else values[graph.output]
