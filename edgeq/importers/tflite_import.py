"""TFLite int8 models -> an edgeq Graph, keeping TFLite's own quantization (docs/interop.md).

The model is already quantized, so nothing is recalibrated: int8 (and int4) weights become I8
weights with their per-channel scales (SCALE_ROW), activations keep their scale and zero point,
biases stay int32, and the requantization multipliers and shifts are computed from the scales
exactly as TFLite's kernels compute them. edgeq's integer ops (docs/numerics.md) are TFLite's, so
the reference executor reproduces TFLite's reference kernels bit for bit; SOFTMAX and a float
QUANTIZE are the only float steps and agree within one int8 step.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.graph import Graph, Tensor
from edgeq.quant.fixedpoint import quantize_multiplier

# BuiltinOperator ids of the TFLite schema (stable) and the ops this importer lowers
OPS = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6,
       "FULLY_CONNECTED": 9, "MAX_POOL_2D": 17, "RESHAPE": 22, "SOFTMAX": 25, "QUANTIZE": 114}
_T_FLOAT32, _T_INT32, _T_INT8, _T_INT4 = 0, 2, 9, 17
_TYPE_NAMES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 7: "INT16", 9: "INT8", 17: "INT4"}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3
_ACT_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_SAME = 0  # Padding enum: SAME = 0, VALID = 1


def _op_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _tfl_round(x: float) -> int:
    """TfLiteRound: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


@dataclass
class _TTensor:
    """What the importer needs of one TFLite tensor."""

    index: int
    name: str
    shape: tuple[int, ...]
    type: int
    scales: np.ndarray  # float32, empty when not quantized
    zeros: np.ndarray  # int64
    qdim: int
    data: bytes | None  # constant contents

    @property
    def scale(self) -> float:
        return float(self.scales[0])

    @property
    def zero(self) -> int:
        return int(self.zeros[0])


class _Importer:
    def __init__(self, path: Path, raw: bytes):
        import tflite

        self.tflite, self.path, self.raw = tflite, path, raw
        self.model = tflite.Model.GetRootAs(raw, 0)
        if self.model.SubgraphsLength() != 1:
            raise self.fail(f"has {self.model.SubgraphsLength()} subgraphs; edgeq imports single-subgraph models")
        self.sg = self.model.Subgraphs(0)
        self.tensors = [self._tensor(i) for i in range(self.sg.TensorsLength())]
        self.g = Graph()
        self.value: dict[int, int] = {}  # TFLite tensor index -> edgeq tensor index
        self.consumers: dict[int, int] = {}  # TFLite tensor index -> how many ops read it
        self.graph_outputs: set[int] = set()

    def fail(self, msg: str) -> EdgeqError:
        return EdgeqError(f"{self.path}: {msg}")

    def _tensor(self, i: int) -> _TTensor:
        t = self.sg.Tensors(i)
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if not t.ShapeIsNone() else ()
        q = t.Quantization()
        scales, zeros, qdim = np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        if q is not None and not q.ScaleIsNone():
            scales = np.asarray(q.ScaleAsNumpy(), np.float32)
            zeros = np.asarray(q.ZeroPointAsNumpy(), np.int64) if not q.ZeroPointIsNone() else np.zeros(1, np.int64)
            qdim = q.QuantizedDimension()
        data = None
        if t.Buffer() > 0:
            if t.Buffer() >= self.model.BuffersLength():
                raise self.fail(f"tensor {i} uses buffer {t.Buffer()} of {self.model.BuffersLength()}")
            buf = self.model.Buffers(t.Buffer())
            if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
                if buf.Offset() + buf.Size() > len(self.raw):
                    raise self.fail(f"tensor {i}: buffer [{buf.Offset()}, +{buf.Size()}) lies outside the file")
                data = self.raw[buf.Offset() : buf.Offset() + buf.Size()]
            elif not buf.DataIsNone():
                data = buf.DataAsNumpy().tobytes()
        name = (t.Name() or b"").decode(errors="replace") or f"t{i}"
        return _TTensor(i, name, shape, t.Type(), scales, zeros, qdim, data)

    # --- helpers --------------------------------------------------------------------------------

    def act_tensor(self, t: _TTensor, what: str) -> _TTensor:
        """Checks an activation is int8 with one scale and zero point."""
        if t.type != _T_INT8:
            raise self.fail(f"{what}: tensor {t.name} is {_TYPE_NAMES.get(t.type, t.type)}, edgeq imports int8 "
                            "activations")
        if len(t.scales) != 1 or not t.scale > 0 or not -128 <= t.zero <= 127:
            raise self.fail(f"{what}: tensor {t.name} needs one positive scale and an int8 zero point")
        return t

    def out(self, t: _TTensor, what: str, fmt: int = F.FMT_I8) -> int:
        if fmt == F.FMT_I8:
            self.act_tensor(t, what)
            idx = self.g.activation(t.name, fmt, _batch1(t.shape), t.scale, t.zero)
        else:
            idx = self.g.activation(t.name, fmt, _batch1(t.shape))
        self.value[t.index] = idx
        return idx

    def inp(self, t: _TTensor, what: str) -> int:
        if t.index not in self.value:
            raise self.fail(f"{what}: input {t.name} is not produced by an earlier op (constant activations "
                            "are not imported)")
        return self.value[t.index]

    def act_range(self, act: int, y: _TTensor, what: str) -> dict[int, int]:
        """TFLite's CalculateActivationRangeQuantized for an int8 output."""
        s, z = np.float32(y.scale), y.zero

        def q(v: float) -> int:
            return z + _tfl_round(float(np.float32(v) / s))

        if act == _ACT_NONE:
            lo, hi = -128, 127
        elif act == _ACT_RELU:
            lo, hi = max(-128, q(0.0)), 127
        elif act == _ACT_RELU6:
            lo, hi = max(-128, q(0.0)), min(127, q(6.0))
        elif act == _ACT_RELU_N1_TO_1:
            lo, hi = max(-128, q(-1.0)), min(127, q(1.0))
        else:
            raise self.fail(f"{what}: fused activation {_ACT_NAMES.get(act, act)} is not supported "
                            "(NONE, RELU, RELU6, RELU_N1_TO_1)")
        return {L.ATTR_ACT_MIN: lo, L.ATTR_ACT_MAX: hi}

    def options(self, op, table: str):
        raw = op.BuiltinOptions()
        if raw is None:
            raise self.fail(f"{table[:-7]} has no options")
        opts = getattr(self.tflite, table)()
        opts.Init(raw.Bytes, raw.Pos)
        return opts

    def weight_values(self, w: _TTensor, what: str) -> np.ndarray:
        """The int8 values of an int8 or int4 (two per byte, low nibble first) weight tensor."""
        n = int(np.prod(w.shape))
        if w.data is None:
            raise self.fail(f"{what}: weights {w.name} are not a constant")
        if w.type == _T_INT8:
            if len(w.data) != n:
                raise self.fail(f"{what}: weights {w.name} have {len(w.data)} bytes, shape {list(w.shape)} needs {n}")
            return np.frombuffer(w.data, np.int8).reshape(w.shape)
        if w.type == _T_INT4:
            if len(w.data) != (n + 1) // 2:
                raise self.fail(f"{what}: int4 weights {w.name} have {len(w.data)} bytes, need {(n + 1) // 2}")
            b = np.frombuffer(w.data, np.uint8)
            nib = np.stack([b & 15, b >> 4], axis=1).reshape(-1)[:n].astype(np.int8)
            return np.where(nib > 7, nib - 16, nib).astype(np.int8).reshape(w.shape)
        raise self.fail(f"{what}: weights {w.name} are {_TYPE_NAMES.get(w.type, w.type)} (int8 or int4 expected)")

    def weight_op(self, kind: str, what: str, x_t: _TTensor, w_t: _TTensor, b_t: _TTensor | None,
                  y_t: _TTensor, ints: np.ndarray, qdim: int, act: int, attrs: dict[int, int]) -> None:
        """Emits LINEAR/CONV2D/DWCONV2D with I8 weights ints [rows, cols] and TFLite's requantization."""
        rows = ints.shape[0]
        if len(w_t.scales) not in (1, rows) or (len(w_t.scales) == rows > 1 and w_t.qdim != qdim):
            raise self.fail(f"{what}: weights {w_t.name} need one scale or one per output channel")
        if np.any(w_t.zeros != 0):
            raise self.fail(f"{what}: weights {w_t.name} have non-zero zero points (TFLite int8 weights are "
                            "symmetric)")
        per_channel = len(w_t.scales) > 1
        s_w = np.broadcast_to(w_t.scales, (rows,)).astype(np.float32)
        s_in, s_out = x_t.scale, y_t.scale
        if not (np.isfinite(s_out) and s_out > 0):  # a corrupt file: no requantization exists
            raise self.fail(f"{what}: output {y_t.name} has quantization scale {s_out} (positive expected)")
        if per_channel or kind != "linear":  # PopulateConvolutionQuantizationParams: in double
            real = [float(s_in) * float(s) / float(s_out) for s in s_w]
        else:  # FULLY_CONNECTED per tensor: GetQuantizedConvolutionMultipler takes the fp32 product
            real = [float(np.float32(s_in) * s_w[0]) / float(s_out)] * rows
        mult, shift = zip(*(quantize_multiplier(r) for r in real))
        bias = np.zeros(rows, np.int64)
        if b_t is not None:
            if b_t.type != _T_INT32 or b_t.data is None or len(b_t.data) != 4 * rows:
                raise self.fail(f"{what}: bias {b_t.name} must be a constant int32 [{rows}]")
            bias = np.frombuffer(b_t.data, "<i4").astype(np.int64)
        bias = bias - x_t.zero * ints.astype(np.int64).sum(axis=1)  # fold the input zero point (numerics.md)
        if np.abs(bias).max() >= 2**31:
            raise self.fail(f"{what}: bias does not fit int32 once the input zero point is folded in")
        packed = FORMATS["i8"].pack(ints, s_w, scale_kind=F.SCALE_ROW)
        name = w_t.name
        widx = self.g.add(Tensor(name, packed.format, (packed.rows, packed.cols), packed=packed, flags=L.TENSOR_CONST))
        extra = [self.g.const(f"{name}.bias", bias.astype(np.int32)), self.g.const(f"{name}.mult", np.array(mult, np.int32)),
                 self.g.const(f"{name}.shift", np.array(shift, np.int32))]
        x = self.inp(x_t, what)
        if kind == "linear" and len(self.g.tensors[x].shape) != 2:
            x = self.flatten(x, ints.shape[1], what)
        y = self.out(y_t, what)
        op_id = {"linear": L.OP_LINEAR, "conv2d": L.OP_CONV2D, "dwconv2d": L.OP_DWCONV2D}[kind]
        self.g.add_op(op_id, [x, widx, *extra], [y], {**self.act_range(act, y_t, what), **attrs})

    def flatten(self, x: int, k: int, what: str) -> int:
        """FULLY_CONNECTED reads its input as [-1, K]: an explicit RESHAPE to [1, K] in edgeq."""
        xt = self.g.tensors[x]
        if int(np.prod(xt.shape)) != k:
            raise self.fail(f"{what}: input {list(xt.shape)} is not one row of {k} (batch 1 models only)")
        y = self.g.activation(xt.name + ".flat", xt.format, (1, k), xt.qscale, xt.qzero)
        self.g.add_op(L.OP_RESHAPE, [x], [y])
        return y

    def window(self, what: str, x_shape, y_shape, kh: int, kw: int, opts, dilation: bool = True) -> dict[int, int]:
        """Padding/stride attrs, checking the output size TFLite declared."""
        if dilation and (opts.DilationHFactor() != 1 or opts.DilationWFactor() != 1):
            raise self.fail(f"{what}: dilation {opts.DilationHFactor()}x{opts.DilationWFactor()} is not supported")
        sh, sw = opts.StrideH(), opts.StrideW()
        if sh < 1 or sw < 1:
            raise self.fail(f"{what}: stride {sh}x{sw} must be positive")
        (_, h, w, _), (_, oh, ow, _) = x_shape, y_shape
        pads = []
        for size, k, s, out in ((h, kh, sh, oh), (w, kw, sw, ow)):
            if opts.Padding() == _SAME:
                want = -(-size // s)
                total = max((want - 1) * s + k - size, 0)
            else:
                want, total = (size - k) // s + 1, 0
            if want != out:
                raise self.fail(f"{what}: declared output {list(y_shape)} disagrees with the padding and stride")
            pads.append((total // 2, total - total // 2))
        (pt, pb), (pl, pr) = pads
        return {L.ATTR_KH: kh, L.ATTR_KW: kw, L.ATTR_STRIDE_H: sh, L.ATTR_STRIDE_W: sw, L.ATTR_PAD_TOP: pt,
                L.ATTR_PAD_LEFT: pl, L.ATTR_PAD_BOTTOM: pb, L.ATTR_PAD_RIGHT: pr}

    # --- ops ------------------------------------------------------------------------------------

    def FULLY_CONNECTED(self, op, ins, outs, what):  # methods are named as TFLite names its ops
        x_t, w_t = ins[0], ins[1]
        opts = self.options(op, "FullyConnectedOptions")
        if opts.WeightsFormat() != 0:
            raise self.fail(f"{what}: shuffled weights are not supported")
        if len(w_t.shape) != 2:
            raise self.fail(f"{what}: weights {w_t.name} must be 2-D, got {list(w_t.shape)}")
        self.act_tensor(x_t, what)
        ints = self.weight_values(w_t, what)
        self.weight_op("linear", what, x_t, w_t, ins[2] if len(ins) > 2 else None, outs[0], ints, 0,
                       opts.FusedActivationFunction(), {})

    def CONV_2D(self, op, ins, outs, what):
        x_t, w_t = self.act_tensor(ins[0], what), ins[1]
        opts = self.options(op, "Conv2DOptions")
        o, kh, kw, c = w_t.shape
        if c != x_t.shape[3]:
            raise self.fail(f"{what}: grouped convolution ({x_t.shape[3]} input channels, filter has {c})")
        ints = self.weight_values(w_t, what).reshape(o, kh * kw * c)
        attrs = self.window(what, x_t.shape, outs[0].shape, kh, kw, opts)
        self.weight_op("conv2d", what, x_t, w_t, ins[2] if len(ins) > 2 else None, outs[0], ints, 0,
                       opts.FusedActivationFunction(), attrs)

    def DEPTHWISE_CONV_2D(self, op, ins, outs, what):
        x_t, w_t = self.act_tensor(ins[0], what), ins[1]
        opts = self.options(op, "DepthwiseConv2DOptions")
        _, kh, kw, c = w_t.shape
        if c != x_t.shape[3]:
            raise self.fail(f"{what}: depth multiplier {opts.DepthMultiplier()} (edgeq supports 1)")
        ints = self.weight_values(w_t, what).reshape(kh * kw, c).T.copy()  # row c = its KH*KW taps
        attrs = self.window(what, x_t.shape, outs[0].shape, kh, kw, opts)
        self.weight_op("dwconv2d", what, x_t, w_t, ins[2] if len(ins) > 2 else None, outs[0], ints, 3,
                       opts.FusedActivationFunction(), attrs)

    def _pool(self, op, ins, outs, what, op_id: int):
        x_t, y_t = self.act_tensor(ins[0], what), self.act_tensor(outs[0], what)
        opts = self.options(op, "Pool2DOptions")
        if (x_t.scale, x_t.zero) != (y_t.scale, y_t.zero):
            raise self.fail(f"{what}: input and output quantization differ (TFLite requires them equal)")
        if opts.FusedActivationFunction() != _ACT_NONE:
            raise self.fail(f"{what}: fused activation on a pool is not supported")
        attrs = self.window(what, x_t.shape, y_t.shape, opts.FilterHeight(), opts.FilterWidth(), opts, dilation=False)
        x = self.inp(x_t, what)
        self.g.add_op(op_id, [x], [self.out(y_t, what)], attrs)

    def MAX_POOL_2D(self, op, ins, outs, what):
        self._pool(op, ins, outs, what, L.OP_MAXPOOL2D)

    def AVERAGE_POOL_2D(self, op, ins, outs, what):
        self._pool(op, ins, outs, what, L.OP_AVGPOOL2D)

    def ADD(self, op, ins, outs, what):
        a_t, b_t, y_t = (self.act_tensor(t, what) for t in (ins[0], ins[1], outs[0]))
        if a_t.shape != b_t.shape:
            raise self.fail(f"{what}: broadcasting {list(a_t.shape)} + {list(b_t.shape)} is not supported")
        opts = self.options(op, "AddOptions")
        left = 20  # TFLite's int8 add: the same formulas as edgeq's packer
        twice_max = 2 * max(a_t.scale, b_t.scale)
        ma, sa = quantize_multiplier(a_t.scale / twice_max)
        mb, sb = quantize_multiplier(b_t.scale / twice_max)
        mo, so = quantize_multiplier(twice_max / ((1 << left) * y_t.scale))
        a, b = self.inp(a_t, what), self.inp(b_t, what)
        self.g.add_op(L.OP_ADD, [a, b], [self.out(y_t, what)], {
            **self.act_range(opts.FusedActivationFunction(), y_t, what), L.ATTR_ADD_LEFT_SHIFT: left,
            L.ATTR_ADD_MULT_A: ma, L.ATTR_ADD_SHIFT_A: sa, L.ATTR_ADD_MULT_B: mb, L.ATTR_ADD_SHIFT_B: sb,
            L.ATTR_ADD_MULT_OUT: mo, L.ATTR_ADD_SHIFT_OUT: so})

    def RESHAPE(self, op, ins, outs, what):
        x_t, y_t = self.act_tensor(ins[0], what), self.act_tensor(outs[0], what)
        if (x_t.scale, x_t.zero) != (y_t.scale, y_t.zero) or np.prod(x_t.shape) != np.prod(y_t.shape):
            raise self.fail(f"{what}: reshape must keep the element count and quantization")
        x = self.inp(x_t, what)
        self.g.add_op(L.OP_RESHAPE, [x], [self.out(y_t, what)])

    def SOFTMAX(self, op, ins, outs, what):
        x_t = self.act_tensor(ins[0], what)
        if self.options(op, "SoftmaxOptions").Beta() != 1.0:
            raise self.fail(f"{what}: softmax beta other than 1 is not supported")
        if self.consumers.get(outs[0].index) or outs[0].index not in self.graph_outputs:
            raise self.fail(f"{what}: softmax is supported as the model's last op only (edgeq outputs fp32 there)")
        x = self.inp(x_t, what)
        self.g.add_op(L.OP_SOFTMAX, [x], [self.out(outs[0], what, F.FMT_F32)])

    def QUANTIZE(self, op, ins, outs, what):
        if ins[0].type != _T_FLOAT32:
            raise self.fail(f"{what}: only float -> int8 QUANTIZE is supported (requantize is not)")
        x = self.inp(ins[0], what)
        self.g.add_op(L.OP_QUANTIZE, [x], [self.out(outs[0], what)])

    def DEQUANTIZE(self, op, ins, outs, what):
        x_t = self.act_tensor(ins[0], what)
        if outs[0].type != _T_FLOAT32:
            raise self.fail(f"{what}: DEQUANTIZE must produce float32")
        x = self.inp(x_t, what)
        self.g.add_op(L.OP_DEQUANTIZE, [x], [self.out(outs[0], what, F.FMT_F32)])

    # --- driver ---------------------------------------------------------------------------------

    def op_code(self, op) -> tuple[int, str]:
        idx = op.OpcodeIndex()
        if idx >= self.model.OperatorCodesLength():
            raise self.fail(f"operator code index {idx} out of range")
        oc = self.model.OperatorCodes(idx)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == 32:  # CUSTOM
            return code, f"CUSTOM({(oc.CustomCode() or b'').decode(errors='replace')})"
        return code, _op_names().get(code, f"op{code}")

    def run(self) -> Graph:
        n_ops = self.sg.OperatorsLength()
        ops = [self.sg.Operators(k) for k in range(n_ops)]
        codes = [self.op_code(op) for op in ops]
        bad = [f"#{k} {name}" for k, (code, name) in enumerate(codes) if code not in OPS.values()]
        if bad:
            raise self.fail(f"unsupported op(s) {', '.join(bad)} (supported: {', '.join(OPS)})")
        n = len(self.tensors)

        def tensor_list(indices, what: str) -> list[_TTensor]:
            out = []
            for i in indices:
                if not -1 <= i < n:
                    raise self.fail(f"{what}: tensor index {i} out of range (0..{n - 1})")
                if i >= 0:
                    out.append(self.tensors[i])
            return out

        self.graph_outputs = {t.index for t in tensor_list(self.sg.OutputsAsNumpy(), "graph outputs")}
        for op in ops:
            for i in op.InputsAsNumpy():
                self.consumers[int(i)] = self.consumers.get(int(i), 0) + 1
        for t in tensor_list(self.sg.InputsAsNumpy(), "graph inputs"):
            fmt = F.FMT_F32 if t.type == _T_FLOAT32 else F.FMT_I8
            idx = self.out(t, f"input {t.name}", fmt)
            self.g.tensors[idx].flags |= L.TENSOR_INPUT
            self.g.inputs.append(idx)
        for k, (op, (_, name)) in enumerate(zip(ops, codes)):
            what = f"op #{k} {name}"
            ins = tensor_list(op.InputsAsNumpy(), what)
            outs = tensor_list(op.OutputsAsNumpy(), what)
            if len(ins) < 1 or len(outs) != 1:
                raise self.fail(f"{what}: {len(ins)} inputs / {len(outs)} outputs")
            if any(len(t.shape) > L.MAX_DIMS or any(s < 1 for s in t.shape) for t in (*ins, *outs)):
                raise self.fail(f"{what}: a tensor has an unsupported shape (1..4 positive dims)")
            getattr(self, name)(op, ins, outs, what)
        for i in sorted(self.graph_outputs):
            if i not in self.value:
                raise self.fail(f"graph output {self.tensors[i].name} is not produced by any op")
            self.g.tensors[self.value[i]].flags |= L.TENSOR_OUTPUT
            self.g.outputs.append(self.value[i])
        if not self.g.inputs or not self.g.outputs:
            raise self.fail("the model has no inputs or no outputs")
        self.g.metadata = {"model": self.path.name, "source": "tflite",
                           "input_layout": "NHWC" if len(self.g.tensors[self.g.inputs[0]].shape) == 4 else "NF",
                           "tflite": {"version": self.model.Version(), "ops": [name for _, name in codes]}}
        return self.g


def _batch1(shape: tuple[int, ...]) -> tuple[int, ...]:
    """edgeq activations carry batch 1 in their first dim (the reference runs any batch)."""
    return (1, *shape[1:]) if shape else (1,)


def from_tflite(path: str | Path) -> Graph:
    """A .tflite file -> quantized Graph; malformed files and unsupported ops raise EdgeqError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise EdgeqError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise EdgeqError(f"{path}: not a TFLite model (no TFL3 file identifier)")
    try:
        return _Importer(path, raw).run()
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, AttributeError) as e:
        raise EdgeqError(f"{path}: malformed .tflite flatbuffer ({type(e).__name__}: {e})") from None
