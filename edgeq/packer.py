"""The packer: FloatGraph + calibration data -> quantized Graph (static int8 activations).

Weights are quantized to the chosen format per layer; activation ranges come from running the
float graph on calibration data; requantization parameters follow docs/numerics.md exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.graph import Graph
from edgeq.importers.float_graph import FloatGraph, FNode, run_float
from edgeq.quant import quantize_weight
from edgeq.quant.fixedpoint import quantize_multiplier

WEIGHT_KINDS = ("linear", "conv2d", "dwconv2d")


@dataclass
class Recipe:
    """How to quantize: the default format, per-layer overrides, and the Q4 group size."""

    format: str = "t2"
    group: int = 32
    layer_formats: dict[str, str] = field(default_factory=dict)
    first_last_i8: bool = False

    def format_for(self, name: str, index: int, count: int) -> str:
        if name in self.layer_formats:
            return self.layer_formats[name]
        if self.first_last_i8 and index in (0, count - 1):
            return "i8"
        return self.format


def qparams(lo: float, hi: float) -> tuple[float, int]:
    """TFLite asymmetric int8 parameters for the range [lo, hi] (always containing 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zero


def calibrate(fg: FloatGraph, data: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per-value (min, max) over the calibration set."""
    values = run_float(fg, data, keep_all=True)
    return {k: (float(v.min()), float(v.max())) for k, v in values.items()}


class _Lowering:
    def __init__(self, fg: FloatGraph, ranges: dict, recipe: Recipe, progress: Callable[[str], None] | None):
        self.fg, self.ranges, self.recipe, self.progress = fg, ranges, recipe, progress
        self.g = Graph()
        self.value: dict[str, int] = {}  # float value name -> tensor index
        self.fused: set[str] = set()
        self.layers = [n for n in fg.nodes if n.kind in WEIGHT_KINDS]
        self.layer_formats: dict[str, str] = {}

    def out_qparams(self, name: str) -> tuple[float, int]:
        return qparams(*self.ranges[name])

    def act(self, name: str, shape, fmt: int = F.FMT_I8, q: tuple[float, int] | None = None) -> int:
        scale, zero = q if q is not None else self.out_qparams(name)
        idx = self.g.activation(name, fmt, shape, scale, zero)
        self.value[name] = idx
        return idx

    def sole_relu(self, n: FNode) -> FNode | None:
        users = self.fg.consumers(n.name)
        if len(users) == 1 and users[0].kind == "relu" and n.name != self.fg.output:
            return users[0]
        return None

    def feeds_output(self, n: FNode) -> bool:
        """True for the last weight layer: its output is the graph output or goes only to a final softmax."""
        if n.name == self.fg.output:
            return True
        users = self.fg.consumers(n.name)
        return len(users) == 1 and users[0].kind == "softmax" and users[0].name == self.fg.output

    def lower(self) -> Graph:
        for n in self.fg.nodes:
            if n.name in self.fused:
                continue
            getattr(self, "_" + n.kind)(n)
        out = self.value[self.fg.output]
        t = self.g.tensors[out]
        if t.format == F.FMT_I8:
            f = self.g.activation(self.fg.output + ".dequant", F.FMT_F32, t.shape)
            self.g.add_op(L.OP_DEQUANTIZE, [out], [f])
            out = f
        self.g.tensors[out].flags |= L.TENSOR_OUTPUT
        self.g.outputs = [out]
        return self.g

    def _input(self, n: FNode) -> None:
        f = self.g.activation(n.name + ".f32", F.FMT_F32, self.fg.input_shape)
        self.g.tensors[f].flags |= L.TENSOR_INPUT
        self.g.inputs = [f]
        q = self.act(n.name, self.fg.input_shape)
        self.g.add_op(L.OP_QUANTIZE, [f], [q])

    def _weights(self, n: FNode) -> None:
        x = self.value[n.inputs[0]]
        xt = self.g.tensors[x]
        prequantized = n.params.get("prequantized")  # imported with the model's own codes and scales
        fmt = prequantized.name if prequantized is not None else \
            self.recipe.format_for(n.name, self.layers.index(n), len(self.layers))
        if fmt not in FORMATS:
            raise EdgeqError(f"unknown format '{fmt}' for layer {n.name}; choose from {', '.join(FORMATS)}")
        self.layer_formats[n.name] = fmt
        if self.progress:
            self.progress(f"{n.name} -> {fmt}")
        w = n.params["weight"]
        rows = w.reshape(w.shape[0], -1)
        packed = prequantized if prequantized is not None else quantize_weight(rows, fmt, group=self.recipe.group)
        relu = self.sole_relu(n)
        out_name = relu.name if relu else n.name
        s_out, z_out = self.out_qparams(out_name)
        dequant = not relu and self.feeds_output(n)
        if xt.format == F.FMT_B1:
            s_in, z_in = 1.0, 0
        else:
            s_in, z_in = xt.qscale, xt.qzero
        ints = packed.int_values()[:, : rows.shape[1]].astype(np.int64)
        bias = n.params["bias"].astype(np.float64)
        widx = self.g.add(_weight_tensor(n.name + ".weight", packed))
        if packed.scale_kind == F.SCALE_ROW:
            s_w = packed.scales.astype(np.float64)
            real = s_in * s_w / s_out
            mult, shift = zip(*(quantize_multiplier(r) for r in real))
            with np.errstate(divide="ignore", invalid="ignore"):
                bq = np.where(s_w > 0, np.round(bias / (s_in * s_w)), 0)
            bq = bq - z_in * ints.sum(axis=1)
            if np.abs(bq).max(initial=0) >= 2**31:
                raise EdgeqError(f"layer {n.name}: bias does not fit int32 after quantization")
            extra = [self.g.const(n.name + ".bias", bq.astype(np.int32))]
            if dequant:
                extra.append(self.g.const(n.name + ".scale", (np.float32(s_in) * s_w.astype(np.float32))))
            else:
                extra += [self.g.const(n.name + ".mult", np.array(mult, np.int32)),
                          self.g.const(n.name + ".shift", np.array(shift, np.int32))]
        else:
            d = packed.scales.astype(np.float64)  # [rows, nb]
            block = packed.block
            nb = d.shape[1]
            padded = np.zeros((ints.shape[0], nb * block), np.int64)
            padded[:, : ints.shape[1]] = ints
            wsum = padded.reshape(ints.shape[0], nb, block).sum(axis=2)
            biasf = bias / s_in - z_in * (d * wsum).sum(axis=1)
            extra = [self.g.const(n.name + ".bias", biasf.astype(np.float32)),
                     self.g.const(n.name + ".mult", np.full(rows.shape[0], s_in if dequant else s_in / s_out,
                                                            np.float32))]
        if n.kind == "linear":
            out_shape = (1, rows.shape[0])
        else:
            _, h, wd, _ = xt.shape
            kh, kw = w.shape[1], w.shape[2]
            pt, pl, pb, pr = n.attrs["pads"]
            sh, sw = n.attrs["stride"]
            out_shape = (1, (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1, rows.shape[0])
        if dequant:
            y = self.g.activation(out_name, F.FMT_F32, out_shape)
            self.value[out_name] = y
        else:
            y = self.act(out_name, out_shape, q=(s_out, z_out))
        attrs = {L.ATTR_ACT_MIN: z_out if relu else -128, L.ATTR_ACT_MAX: 127}
        if n.kind != "linear":
            attrs.update(_window_attrs(w.shape[1], w.shape[2], n.attrs))
        op = {"linear": L.OP_LINEAR, "conv2d": L.OP_CONV2D, "dwconv2d": L.OP_DWCONV2D}[n.kind]
        self.g.add_op(op, [x, widx, *extra], [y], attrs)
        if relu:
            self.fused.add(relu.name)
            self.value[n.name] = y

    _linear = _conv2d = _dwconv2d = _weights

    def _pool(self, n: FNode, op: int) -> None:
        x = self.value[n.inputs[0]]
        xt = self.g.tensors[x]
        _, h, w, c = xt.shape
        kh, kw = n.attrs["kernel"]
        sh, sw = n.attrs["stride"]
        pt, pl, pb, pr = n.attrs["pads"]
        shape = (1, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, c)
        y = self.act(n.name, shape, q=(xt.qscale, xt.qzero))
        self.g.add_op(op, [x], [y], _window_attrs(kh, kw, n.attrs))

    def _maxpool2d(self, n: FNode) -> None:
        self._pool(n, L.OP_MAXPOOL2D)

    def _avgpool2d(self, n: FNode) -> None:
        self._pool(n, L.OP_AVGPOOL2D)

    def _relu(self, n: FNode) -> None:
        x = self.value[n.inputs[0]]
        xt = self.g.tensors[x]
        y = self.act(n.name, xt.shape, q=(xt.qscale, xt.qzero))
        self.g.add_op(L.OP_RELU, [x], [y])

    def _add(self, n: FNode) -> None:
        a, b = (self.value[i] for i in n.inputs)
        at, bt = self.g.tensors[a], self.g.tensors[b]
        relu = self.sole_relu(n)
        out_name = relu.name if relu else n.name
        s_out, z_out = self.out_qparams(out_name)
        left = 20
        twice_max = 2 * max(at.qscale, bt.qscale)
        ma, sa = quantize_multiplier(at.qscale / twice_max)
        mb, sb = quantize_multiplier(bt.qscale / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << left) * s_out))
        y = self.act(out_name, at.shape, q=(s_out, z_out))
        self.g.add_op(L.OP_ADD, [a, b], [y], {
            L.ATTR_ACT_MIN: z_out if relu else -128, L.ATTR_ACT_MAX: 127, L.ATTR_ADD_LEFT_SHIFT: left,
            L.ATTR_ADD_MULT_A: ma, L.ATTR_ADD_SHIFT_A: sa, L.ATTR_ADD_MULT_B: mb, L.ATTR_ADD_SHIFT_B: sb,
            L.ATTR_ADD_MULT_OUT: mo, L.ATTR_ADD_SHIFT_OUT: so})
        if relu:
            self.fused.add(relu.name)
            self.value[n.name] = y

    def _flatten(self, n: FNode) -> None:
        x = self.value[n.inputs[0]]
        xt = self.g.tensors[x]
        y = self.act(n.name, (1, int(np.prod(xt.shape[1:]))), fmt=xt.format, q=(xt.qscale, xt.qzero))
        self.g.add_op(L.OP_RESHAPE, [x], [y])

    def _softmax(self, n: FNode) -> None:
        x = self.value[n.inputs[0]]
        y = self.g.activation(n.name, F.FMT_F32, self.g.tensors[x].shape)
        self.value[n.name] = y
        self.g.add_op(L.OP_SOFTMAX, [x], [y])

    def _sign(self, n: FNode) -> None:
        x = self.value[n.inputs[0]]
        xt = self.g.tensors[x]
        y = self.act(n.name, xt.shape, fmt=F.FMT_B1, q=(1.0, 0))
        self.g.add_op(L.OP_BINARIZE, [x], [y])


def _window_attrs(kh: int, kw: int, attrs: dict) -> dict[int, int]:
    pt, pl, pb, pr = attrs["pads"]
    sh, sw = attrs["stride"]
    return {L.ATTR_KH: kh, L.ATTR_KW: kw, L.ATTR_STRIDE_H: sh, L.ATTR_STRIDE_W: sw,
            L.ATTR_PAD_TOP: pt, L.ATTR_PAD_LEFT: pl, L.ATTR_PAD_BOTTOM: pb, L.ATTR_PAD_RIGHT: pr}


def _weight_tensor(name: str, packed):
    from edgeq.graph import Tensor

    return Tensor(name, packed.format, (packed.rows, packed.cols), packed=packed, flags=L.TENSOR_CONST)


def bundle_tests(g: Graph, x: np.ndarray, labels: np.ndarray | None) -> None:
    """Stores test inputs, their host-reference outputs and labels in the graph."""
    outputs = reference.run(g, [x])
    t = g.const("__test_input_0", np.ascontiguousarray(x, np.float32))
    g.tensors[t].flags |= L.TENSOR_TEST_INPUT
    g.tensors[t].test_index = 0
    for k, out in enumerate(outputs):
        o = g.const(f"__test_output_{k}", out)
        g.tensors[o].flags |= L.TENSOR_TEST_OUTPUT
        g.tensors[o].test_index = k
    if labels is not None:
        lab = g.const("__test_labels", np.asarray(labels, np.int32))
        g.tensors[lab].flags |= L.TENSOR_TEST_LABEL
        g.tensors[lab].test_index = 0


def replace_tests(g: Graph, x: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Drops the bundled test tensors of `g` (no op uses them) and bundles `x` (+ labels) instead."""
    flags = L.TENSOR_TEST_INPUT | L.TENSOR_TEST_OUTPUT | L.TENSOR_TEST_LABEL
    keep = [i for i, t in enumerate(g.tensors) if not t.flags & flags]
    new = {old: k for k, old in enumerate(keep)}
    g.tensors = [g.tensors[i] for i in keep]
    for op in g.ops:
        op.inputs = [new[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [new[i] for i in op.outputs]
    g.inputs, g.outputs = [new[i] for i in g.inputs], [new[i] for i in g.outputs]
    bundle_tests(g, x, labels)


def apply_target_layout(g: Graph, target: str) -> None:
    """Stores the weights in the layout the target's file asks for (`layout = "rows4"`: T2 and Q4 weights
    interleaved for the dotprod kernels; other formats have no tiled layout and stay row-major, and so do
    the weights of ops hinted to the lookup-table kernel, whose packing reads row-major)."""
    if not target:
        return
    from edgeq.formats.packed import ROWS4_FORMATS
    from edgeq.targets.registry import LAYOUTS, get_target

    layout = LAYOUTS[get_target(target).layout]
    if layout != F.LAYOUT_ROWS4:
        return
    lut = {op.inputs[1] for op in g.ops if op.flags & L.OPF_LUT and len(op.inputs) > 1}
    for i, t in enumerate(g.tensors):
        if t.packed is not None and t.packed.format in ROWS4_FORMATS and i not in lut:
            t.packed = t.packed.with_layout(layout)


def set_kernel_hints(g: Graph, target: str) -> dict[str, str]:
    """Per weighted op, the kernel the target's [kernels] rules choose, written as op flags; {} without rules."""
    if not target:
        return {}
    from edgeq.targets import kernel_rules
    from edgeq.targets.registry import get_target

    rules = kernel_rules.target_rules(get_target(target))
    return kernel_rules.apply(g, rules) if rules else {}


def pack(fg: FloatGraph, calib: np.ndarray, recipe: Recipe, *, target: str = "", tests: np.ndarray | None = None,
         labels: np.ndarray | None = None, metadata: dict | None = None,
         progress: Callable[[str], None] | None = None) -> Graph:
    """Quantizes and lowers `fg`; bundles `tests` (+ labels) with their reference outputs."""
    if calib.shape[1:] != fg.input_shape[1:]:
        raise EdgeqError(f"calibration data has shape {list(calib.shape)}, the model takes "
                         f"[N, {', '.join(map(str, fg.input_shape[1:]))}]")
    ranges = calibrate(fg, calib)
    low = _Lowering(fg, ranges, recipe, progress)
    g = low.lower()
    g.target = target
    kernels = set_kernel_hints(g, target)
    apply_target_layout(g, target)
    g.metadata = {
        "model": fg.source,
        "recipe": {"format": recipe.format, "group": recipe.group, "layers": low.layer_formats,
                   "activations": "int8 static per-tensor (min/max)", "calibration_samples": len(calib)},
        "input_layout": "NHWC" if len(fg.input_shape) == 4 else "NF",
        **({"kernels": kernels} if kernels else {}),
        **(metadata or {}),
    }
    if tests is not None:
        bundle_tests(g, tests, labels)
    return g
