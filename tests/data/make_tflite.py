"""Writes small int8 .tflite models straight from the flatbuffer schema (there is no TensorFlow
here): `tflite` package builders + `flatbuffers`. Weights are random but deterministic; activation
scales follow a rough propagation of the real-valued spread so that outputs are neither all
saturated nor all zero. Run `python tests/data/make_tflite.py DIR` to write every model to DIR;
the tests build them in a temp dir.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
import tflite
from tflite.ActivationFunctionType import ActivationFunctionType as Act
from tflite.BuiltinOperator import BuiltinOperator as Op
from tflite.BuiltinOptions import BuiltinOptions as Opt
from tflite.Padding import Padding
from tflite.TensorType import TensorType as T


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    type: int
    buffer: int = 0
    scale: list[float] = field(default_factory=list)
    zero: list[int] = field(default_factory=list)
    qdim: int = 0


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, int, dict] | None  # (table name, BuiltinOptions id, {field: value})


class ModelBuilder:
    """Collects tensors and ops, then serialises them as one-subgraph TFLite flatbuffer bytes."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.buffers: list[bytes] = [b""]
        self.tensors: list[_Tensor] = []
        self.ops: list[_Op] = []
        self.spread: dict[int, float] = {}  # tensor -> rough real-valued std, to size the next scale

    def tensor(self, name: str, shape, ttype: int, data: bytes | None = None, scale=(), zero=(), qdim: int = 0) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(data)
            buf = len(self.buffers) - 1
        self.tensors.append(_Tensor(name, tuple(shape), ttype, buf, [float(s) for s in scale],
                                    [int(z) for z in zero], qdim))
        return len(self.tensors) - 1

    def act(self, name: str, shape, spread: float, relu: bool = False) -> int:
        """An int8 activation sized for values of std `spread` (ReLU outputs use the full range)."""
        if relu:
            scale, zero = np.float32(4 * spread / 255), -128
        else:
            scale, zero = np.float32(6 * spread / 255), int(self.rng.integers(-10, 10))
        t = self.tensor(name, shape, T.INT8, scale=[scale], zero=[zero])
        self.spread[t] = spread
        return t

    def input(self, shape, scale: float = 0.02, zero: int = 3) -> int:
        t = self.tensor("input", shape, T.INT8, scale=[scale], zero=[zero])
        self.spread[t] = 255 * scale / 4
        return t

    def op(self, code: int, inputs: list[int], outputs: list[int], options=None) -> int:
        self.ops.append(_Op(code, inputs, outputs, options))
        return outputs[0]

    def _weights(self, name: str, shape, qdim: int, per_channel: bool, int4: bool,
                 gain: float = 1.0) -> tuple[int, np.ndarray, float]:
        lim = 7 if int4 else 127
        q = self.rng.integers(-lim, lim + 1, shape).astype(np.int8)
        n = shape[qdim] if per_channel else 1
        scales = (self.rng.uniform(0.002, 0.02, n) * gain).astype(np.float32)
        if int4:
            flat = (q.reshape(-1).astype(np.uint8) & 15)
            flat = np.concatenate([flat, np.zeros(len(flat) % 2, np.uint8)])
            data = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
        else:
            data = q.tobytes()
        t = self.tensor(name, shape, T.INT4 if int4 else T.INT8, data, scales, [0] * n, qdim)
        rms = float(np.sqrt(np.mean((q.astype(np.float64) * np.resize(scales, shape[qdim])
                                     .reshape([-1 if d == qdim else 1 for d in range(len(shape))])) ** 2)))
        return t, scales, rms

    def _bias(self, name: str, x: int, scales: np.ndarray, n: int) -> int:
        s_in = self.tensors[x].scale[0]
        bias_scale = (np.float32(s_in) * np.resize(scales, n)).astype(np.float32)
        values = self.rng.integers(-2000, 2000, n).astype(np.int32)
        return self.tensor(name, (n,), T.INT32, values.tobytes(), bias_scale, [0] * n)

    def fully_connected(self, x: int, units: int, act: int = Act.NONE, per_channel: bool = False,
                        int4: bool = False, gain: float = 1.0) -> int:
        """gain scales the weights (a small gain keeps softmax logits from saturating)."""
        k = int(np.prod(self.tensors[x].shape[1:]))
        i = len(self.ops)
        w, scales, rms = self._weights(f"fc{i}.weight", (units, k), 0, per_channel, int4, gain)
        b = self._bias(f"fc{i}.bias", x, scales, units)
        y = self.act(f"fc{i}", (1, units), self.spread[x] * rms * np.sqrt(k), relu=act != Act.NONE)
        return self.op(Op.FULLY_CONNECTED, [x, w, b], [y],
                       ("FullyConnectedOptions", Opt.FullyConnectedOptions, {"FusedActivationFunction": act}))

    def conv(self, x: int, out_ch: int, k: int, stride: int, padding: int, act: int = Act.RELU,
             depthwise: bool = False) -> int:
        _, h, wd, c = self.tensors[x].shape
        i = len(self.ops)
        if padding == Padding.SAME:
            oh, ow = -(-h // stride), -(-wd // stride)
        else:
            oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
        if depthwise:
            w, scales, rms = self._weights(f"dw{i}.weight", (1, k, k, c), 3, True, False)
            out_ch, fan_in = c, k * k
        else:
            w, scales, rms = self._weights(f"conv{i}.weight", (out_ch, k, k, c), 0, True, False)
            fan_in = k * k * c
        b = self._bias(f"{'dw' if depthwise else 'conv'}{i}.bias", x, scales, out_ch)
        y = self.act(f"{'dw' if depthwise else 'conv'}{i}", (1, oh, ow, out_ch),
                     self.spread[x] * rms * np.sqrt(fan_in), relu=act != Act.NONE)
        opts = {"Padding": padding, "StrideW": stride, "StrideH": stride, "FusedActivationFunction": act,
                "DilationWFactor": 1, "DilationHFactor": 1}
        if depthwise:
            return self.op(Op.DEPTHWISE_CONV_2D, [x, w, b], [y], ("DepthwiseConv2DOptions",
                           Opt.DepthwiseConv2DOptions, {**opts, "DepthMultiplier": 1}))
        return self.op(Op.CONV_2D, [x, w, b], [y], ("Conv2DOptions", Opt.Conv2DOptions, opts))

    def pool(self, x: int, k: int, stride: int, padding: int, average: bool) -> int:
        t = self.tensors[x]
        _, h, wd, c = t.shape
        oh, ow = (-(-h // stride), -(-wd // stride)) if padding == Padding.SAME else \
            ((h - k) // stride + 1, (wd - k) // stride + 1)
        y = self.tensor(f"pool{len(self.ops)}", (1, oh, ow, c), T.INT8, scale=t.scale, zero=t.zero)
        self.spread[y] = self.spread[x]
        return self.op(Op.AVERAGE_POOL_2D if average else Op.MAX_POOL_2D, [x], [y], ("Pool2DOptions", Opt.Pool2DOptions,
                       {"Padding": padding, "StrideW": stride, "StrideH": stride, "FilterWidth": k, "FilterHeight": k,
                        "FusedActivationFunction": Act.NONE}))

    def add(self, a: int, b: int, act: int = Act.NONE) -> int:
        spread = float(np.hypot(self.spread[a], self.spread[b]))
        y = self.act(f"add{len(self.ops)}", self.tensors[a].shape, spread, relu=act != Act.NONE)
        return self.op(Op.ADD, [a, b], [y], ("AddOptions", Opt.AddOptions, {"FusedActivationFunction": act}))

    def reshape(self, x: int, shape) -> int:
        t = self.tensors[x]
        new = self.tensor(f"reshape{len(self.ops)}.shape", (len(shape),), T.INT32, np.array(shape, np.int32).tobytes())
        y = self.tensor(f"reshape{len(self.ops)}", shape, T.INT8, scale=t.scale, zero=t.zero)
        self.spread[y] = self.spread[x]
        return self.op(Op.RESHAPE, [x, new], [y])

    def softmax(self, x: int) -> int:
        y = self.tensor("probs", self.tensors[x].shape, T.INT8, scale=[1 / 256], zero=[-128])
        return self.op(Op.SOFTMAX, [x], [y], ("SoftmaxOptions", Opt.SoftmaxOptions, {"Beta": 1.0}))

    def quantize_input(self, shape, scale: float = 0.02, zero: int = 3) -> tuple[int, int]:
        f = self.tensor("input_f32", shape, T.FLOAT32)
        q = self.tensor("input_q", shape, T.INT8, scale=[scale], zero=[zero])
        self.spread[q] = 255 * scale / 4
        return f, self.op(Op.QUANTIZE, [f], [q])

    def dequantize(self, x: int) -> int:
        y = self.tensor("output_f32", self.tensors[x].shape, T.FLOAT32)
        return self.op(Op.DEQUANTIZE, [x], [y])

    def serialize(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024)

        def vec(start, items, kind: str) -> int:
            start(b, len(items))
            for item in reversed(items):
                {"uoff": b.PrependUOffsetTRelative, "i32": b.PrependInt32}[kind](item)
            return b.EndVector()

        buffers = []
        for data in self.buffers:
            d = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            tflite.BufferStart(b)
            if d is not None:
                tflite.BufferAddData(b, d)
            buffers.append(tflite.BufferEnd(b))
        tensors = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = b.CreateNumpyVector(np.array(t.shape, np.int32))
            quant = None
            if t.scale:
                sc = b.CreateNumpyVector(np.array(t.scale, np.float32))
                zp = b.CreateNumpyVector(np.array(t.zero, np.int64))
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sc)
                tflite.QuantizationParametersAddZeroPoint(b, zp)
                tflite.QuantizationParametersAddQuantizedDimension(b, t.qdim)
                quant = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, t.type)
            tflite.TensorAddBuffer(b, t.buffer)
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensors.append(tflite.TensorEnd(b))
        codes = sorted({o.code for o in self.ops})
        ops = []
        for o in self.ops:
            opts = None
            if o.options:
                table, _, fields = o.options
                getattr(tflite, f"{table}Start")(b)
                for key, value in fields.items():
                    getattr(tflite, f"{table}Add{key}")(b, value)
                opts = getattr(tflite, f"{table}End")(b)
            ins = vec(tflite.OperatorStartInputsVector, o.inputs, "i32")
            outs = vec(tflite.OperatorStartOutputsVector, o.outputs, "i32")
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(o.code))
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opts is not None:
                tflite.OperatorAddBuiltinOptionsType(b, o.options[1])
                tflite.OperatorAddBuiltinOptions(b, opts)
            ops.append(tflite.OperatorEnd(b))
        sg_tensors = vec(tflite.SubGraphStartTensorsVector, tensors, "uoff")
        sg_in = vec(tflite.SubGraphStartInputsVector, inputs, "i32")
        sg_out = vec(tflite.SubGraphStartOutputsVector, outputs, "i32")
        sg_ops = vec(tflite.SubGraphStartOperatorsVector, ops, "uoff")
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, sg_tensors)
        tflite.SubGraphAddInputs(b, sg_in)
        tflite.SubGraphAddOutputs(b, sg_out)
        tflite.SubGraphAddOperators(b, sg_ops)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)
        opcodes = []
        for code in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            opcodes.append(tflite.OperatorCodeEnd(b))
        m_codes = vec(tflite.ModelStartOperatorCodesVector, opcodes, "uoff")
        m_subgraphs = vec(tflite.ModelStartSubgraphsVector, [subgraph], "uoff")
        m_buffers = vec(tflite.ModelStartBuffersVector, buffers, "uoff")
        desc = b.CreateString("edgeq test model")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, m_codes)
        tflite.ModelAddSubgraphs(b, m_subgraphs)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, m_buffers)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def cnn() -> bytes:
    """conv(SAME, ReLU) -> depthwise(stride 2, ReLU6) -> max pool -> reshape -> FC -> softmax."""
    m = ModelBuilder(1)
    x = m.input((1, 8, 8, 3))
    y = m.conv(x, 8, 3, 1, Padding.SAME, Act.RELU)
    y = m.conv(y, 0, 3, 2, Padding.SAME, Act.RELU6, depthwise=True)
    y = m.pool(y, 2, 2, Padding.VALID, average=False)
    y = m.reshape(y, (1, 32))
    y = m.fully_connected(y, 10, gain=0.1)
    return m.serialize([x], [m.softmax(y)])


def residual() -> bytes:
    """Two conv branches (VALID and SAME, stride 1) added, average pool with SAME padding, FC."""
    m = ModelBuilder(2)
    x = m.input((1, 7, 7, 4), scale=0.03, zero=-5)
    a = m.conv(x, 6, 1, 1, Padding.VALID, Act.NONE)
    b = m.conv(x, 6, 3, 1, Padding.SAME, Act.RELU)
    y = m.add(a, b, Act.RELU)
    y = m.pool(y, 3, 2, Padding.SAME, average=True)
    y = m.reshape(y, (1, 96))
    y = m.fully_connected(y, 12, Act.RELU, per_channel=True)
    return m.serialize([x], [m.fully_connected(y, 5)])


def mlp_int4() -> bytes:
    """Float in -> QUANTIZE -> FC with int4 weights -> FC int8 -> DEQUANTIZE -> float out."""
    m = ModelBuilder(3)
    f, x = m.quantize_input((1, 40), scale=0.05, zero=0)
    y = m.fully_connected(x, 24, Act.RELU, per_channel=True, int4=True)
    y = m.fully_connected(y, 6)
    return m.serialize([f], [m.dequantize(y)])


def unsupported() -> bytes:
    """A model with an op edgeq does not import (TANH) after a supported one."""
    m = ModelBuilder(4)
    x = m.input((1, 16))
    y = m.fully_connected(x, 8)
    t = m.tensors[y]
    z = m.tensor("tanh", t.shape, T.INT8, scale=[1 / 128], zero=[0])
    return m.serialize([x], [m.op(Op.TANH, [y], [z])])


MODELS = {"cnn": cnn, "residual": residual, "mlp_int4": mlp_int4, "unsupported": unsupported}


def write_all(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, make in MODELS.items():
        paths[name] = directory / f"{name}.tflite"
        paths[name].write_bytes(make())
    return paths


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "tflite")).values():
        print(p)
