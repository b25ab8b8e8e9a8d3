"""Numpy reference executor: runs a quantized Graph with the exact integer semantics of
docs/numerics.md. It is the truth the C kernels, devices and emulators are checked against."""

from __future__ import annotations

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import ids as F
from edgeq.graph import Graph, Op, Tensor
from edgeq.quant.activations import quantize_absmax_rows
from edgeq.quant.fixedpoint import multiply_by_quantized_multiplier

A = L  # attr indices live in layout


def _weight_ints(t: Tensor) -> np.ndarray:
    """Integer weight values [rows, padded_cols] (int32)."""
    return t.packed.int_values().astype(np.int32)


def _binary_activation_values(bits: np.ndarray, cols: int) -> np.ndarray:
    """B1 activation words [N, words] -> ±1 int32 [N, words*32] (bit set = -1)."""
    b = np.unpackbits(bits.view(np.uint8).reshape(bits.shape[0], -1), axis=1, bitorder="little")
    vals = (1 - 2 * b.astype(np.int32))
    vals[:, cols:] = 0
    return vals


def _dot_rows(x: np.ndarray, w: Tensor, rows: slice, bias: np.ndarray, mult: np.ndarray,
              shift: np.ndarray | None, zp_out: int, act_min: int, act_max: int) -> np.ndarray:
    """x int32 [P, Kp] (padded with raw 0) times rows `rows` of packed `w` -> int8 [P, M], or
    float32 when zp_out is None (F32 output: dequantized, unclamped)."""
    p = w.packed
    wi = _weight_ints(w)[rows]
    bias, mult = bias[rows], mult[rows]
    if p.scale_kind == F.SCALE_ROW:
        acc = x.astype(np.int64) @ wi.T.astype(np.int64)
        acc = acc.astype(np.int32) + bias.astype(np.int32)[None, :]
        if zp_out is None:  # F32 output: dequantize
            return acc.astype(np.float32) * mult.astype(np.float32)[None, :]
        y = multiply_by_quantized_multiplier(acc, mult[None, :], shift[rows][None, :]) + zp_out
    elif p.scale_kind == F.SCALE_BLOCK:
        nb = wi.shape[1] // p.block
        xb = x.reshape(x.shape[0], nb, p.block).astype(np.int64)
        wb = wi.reshape(wi.shape[0], nb, p.block).astype(np.int64)
        isum = np.einsum("pbk,mbk->pmb", xb, wb).astype(np.int32)
        d = p.scales[rows].astype(np.float32)  # [M, nb]
        accf = np.zeros((x.shape[0], wi.shape[0]), np.float32)
        for b in range(nb):
            accf = accf + d[None, :, b] * isum[:, :, b].astype(np.float32)
        if zp_out is None:  # F32 output: dequantize
            return (accf + bias.astype(np.float32)[None, :]) * mult.astype(np.float32)[None, :]
        y = np.rint((accf + bias.astype(np.float32)[None, :]) * mult.astype(np.float32)[None, :])
        y = np.clip(y, -(1 << 30), 1 << 30).astype(np.int64) + zp_out
    else:
        raise EdgeqError(f"tensor {w.name}: scale kind {p.scale_kind} cannot be used as a weight")
    return np.clip(y, act_min, act_max).astype(np.int8)


def _zp_out(yt: Tensor) -> int | None:
    """The output zero point, or None for an F32 (dequantized) output."""
    return None if yt.format == F.FMT_F32 else yt.qzero


def _pad_cols(x: np.ndarray, cols: int) -> np.ndarray:
    if x.shape[1] == cols:
        return x
    out = np.zeros((x.shape[0], cols), x.dtype)
    out[:, : x.shape[1]] = x
    return out


def _im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pads: tuple[int, int, int, int],
            pad_value: int) -> tuple[np.ndarray, int, int]:
    """NHWC int8 -> patches [N*OH*OW, KH*KW*C] ordered (kh, kw, c), padding with pad_value."""
    pt, pl, pb, pr = pads
    n, h, w, c = x.shape
    xp = np.full((n, h + pt + pb, w + pl + pr, c), pad_value, np.int32)
    xp[:, pt : pt + h, pl : pl + w, :] = x
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), np.int32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c), oh, ow


def _window(op: Op) -> tuple[int, int, int, int, tuple[int, int, int, int]]:
    a = op.attrs
    pads = (a[A.ATTR_PAD_TOP], a[A.ATTR_PAD_LEFT], a[A.ATTR_PAD_BOTTOM], a[A.ATTR_PAD_RIGHT])
    return a[A.ATTR_KH], a[A.ATTR_KW], a[A.ATTR_STRIDE_H], a[A.ATTR_STRIDE_W], pads


def _requant_inputs(g: Graph, op: Op, v: dict) -> tuple:
    w = g.tensors[op.inputs[1]]
    bias, mult = v[op.inputs[2]], v[op.inputs[3]]
    shift = v[op.inputs[4]] if len(op.inputs) > 4 and op.inputs[4] >= 0 else None
    return w, bias, mult, shift


def _linear(g: Graph, op: Op, v: dict) -> np.ndarray:
    xt, yt = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    w, bias, mult, shift = _requant_inputs(g, op, v)
    x = v[op.inputs[0]]
    kp = w.packed.int_values().shape[1]
    if xt.format == F.FMT_B1:
        xi = _pad_cols(_binary_activation_values(x, xt.shape[1]), kp)
    else:
        xi = _pad_cols(x.reshape(-1, x.shape[-1]).astype(np.int32), kp)
    return _dot_rows(xi, w, slice(None), bias, mult, shift, _zp_out(yt), op.attrs[A.ATTR_ACT_MIN],
                     op.attrs[A.ATTR_ACT_MAX])


def _conv(g: Graph, op: Op, v: dict) -> np.ndarray:
    xt, yt = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    w, bias, mult, shift = _requant_inputs(g, op, v)
    x = v[op.inputs[0]]
    kh, kw, sh, sw, pads = _window(op)
    n, c = x.shape[0], x.shape[3]
    kp = w.packed.int_values().shape[1]
    act = (_zp_out(yt), op.attrs[A.ATTR_ACT_MIN], op.attrs[A.ATTR_ACT_MAX])
    if op.op == L.OP_CONV2D:
        patches, oh, ow = _im2col(x, kh, kw, sh, sw, pads, xt.qzero)
        y = _dot_rows(_pad_cols(patches, kp), w, slice(None), bias, mult, shift, *act)
        return y.reshape(n, oh, ow, -1)
    outs = []  # depthwise: channel ch uses weight row ch over its own KH*KW taps
    for ch in range(c):
        patches, oh, ow = _im2col(x[..., ch : ch + 1], kh, kw, sh, sw, pads, xt.qzero)
        outs.append(_dot_rows(_pad_cols(patches, kp), w, slice(ch, ch + 1), bias, mult, shift, *act))
    return np.concatenate(outs, axis=1).reshape(n, oh, ow, c)


def _pool(g: Graph, op: Op, v: dict) -> np.ndarray:
    x = v[op.inputs[0]].astype(np.int32)
    kh, kw, sh, sw, (pt, pl, pb, pr) = _window(op)
    n, h, w, c = x.shape
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    valid = np.zeros((n, h + pt + pb, w + pl + pr, c), bool)
    valid[:, pt : pt + h, pl : pl + w] = True
    xp = np.zeros(valid.shape, np.int32)
    xp[:, pt : pt + h, pl : pl + w] = x
    if op.op == L.OP_MAXPOOL2D:
        xp[~valid] = -128
        out = np.full((n, oh, ow, c), -128, np.int32)
        for i in range(kh):
            for j in range(kw):
                out = np.maximum(out, xp[:, i : i + sh * oh : sh, j : j + sw * ow : sw])
        return out.astype(np.int8)
    total = np.zeros((n, oh, ow, c), np.int32)
    count = np.zeros((n, oh, ow, c), np.int32)
    for i in range(kh):
        for j in range(kw):
            total += xp[:, i : i + sh * oh : sh, j : j + sw * ow : sw]
            count += valid[:, i : i + sh * oh : sh, j : j + sw * ow : sw]
    half = count // 2
    avg = np.where(total > 0, (total + half) // count, -((-(total - half)) // count))
    return np.clip(avg, -128, 127).astype(np.int8)


def _add(g: Graph, op: Op, v: dict) -> np.ndarray:
    at, bt, yt = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    a = op.attrs
    left = a[A.ATTR_ADD_LEFT_SHIFT]
    xa = (v[op.inputs[0]].astype(np.int32) - at.qzero) * (1 << left)
    xb = (v[op.inputs[1]].astype(np.int32) - bt.qzero) * (1 << left)
    sa = multiply_by_quantized_multiplier(xa, a[A.ATTR_ADD_MULT_A], a[A.ATTR_ADD_SHIFT_A])
    sb = multiply_by_quantized_multiplier(xb, a[A.ATTR_ADD_MULT_B], a[A.ATTR_ADD_SHIFT_B])
    out = multiply_by_quantized_multiplier(sa + sb, a[A.ATTR_ADD_MULT_OUT], a[A.ATTR_ADD_SHIFT_OUT]) + yt.qzero
    return np.clip(out, a[A.ATTR_ACT_MIN], a[A.ATTR_ACT_MAX]).astype(np.int8)


def _softmax(g: Graph, op: Op, v: dict) -> np.ndarray:
    xt = g.tensors[op.inputs[0]]
    x = v[op.inputs[0]]
    if xt.format == F.FMT_I8:
        x = (x.astype(np.int32) - xt.qzero).astype(np.float32) * np.float32(xt.qscale)
    x = x.astype(np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def quantize(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """QUANTIZE op semantics: clamp(rint(x * fp32(1/s)) + z)."""
    inv = np.float32(1.0) / np.float32(scale)
    q = np.rint(np.asarray(x, np.float32) * inv)
    return np.clip(q + zero, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero: int) -> np.ndarray:
    return (q.astype(np.int32) - zero).astype(np.float32) * np.float32(scale)


def _binarize(g: Graph, op: Op, v: dict) -> np.ndarray:
    xt = g.tensors[op.inputs[0]]
    x = v[op.inputs[0]]
    bits = (x.reshape(x.shape[0], -1) < xt.qzero).astype(np.uint8)
    words = -(-bits.shape[1] // 64) * 2  # B1 rows padded to 64 bits
    padded = np.zeros((bits.shape[0], words * 32), np.uint8)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view(np.uint32)


def _linear_dyn(g: Graph, op: Op, v: dict) -> np.ndarray:
    """Int8 absmax per token into the weight kernels, fp32 out: bit-exact with runtimes/src/matmul.c."""
    w, x, bias = g.tensors[op.inputs[1]], v[op.inputs[0]], v[op.inputs[2]].astype(np.float32)
    p = w.packed
    rows = x.reshape(-1, x.shape[-1])
    q, s = quantize_absmax_rows(rows)
    q = q.astype(np.int32)
    wi = _weight_ints(w)
    q = _pad_cols(q, wi.shape[1])
    # integer dot products through float64 BLAS: |sums| <= 127 * 128 * K stay exact far below 2**53
    qf, wf = q.astype(np.float64), wi.astype(np.float64)
    if p.scale_kind == F.SCALE_ROW:
        acc = (qf @ wf.T).astype(np.int32).astype(np.float32)
        y = acc * (s[:, None] * p.scales.astype(np.float32)[None, :]) + bias[None, :]
    else:
        nb = wi.shape[1] // p.block
        d = p.scales.astype(np.float32)
        accf = np.zeros((q.shape[0], wi.shape[0]), np.float32)
        for b in range(nb):
            sl = slice(b * p.block, (b + 1) * p.block)
            accf = accf + d[None, :, b] * (qf[:, sl] @ wf[:, sl].T).astype(np.float32)
        y = accf * s[:, None] + bias[None, :]
    return y.astype(np.float32).reshape(x.shape[:-1] + (wi.shape[0],))


def _embed(g: Graph, op: Op, v: dict) -> np.ndarray:
    ids = v[op.inputs[0]]
    table = g.tensors[op.inputs[1]]
    if table.packed is not None:  # I8 rows with per-row scales
        vocab = table.packed.int_values()[:, : table.shape[1]].astype(np.float32) * table.packed.scales[:, None]
    else:
        vocab = table.array
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= vocab.shape[0]:
        raise EdgeqError(f"embed: token id outside the vocabulary (0..{vocab.shape[0] - 1})")
    pos, typ = v[op.inputs[2]], v[op.inputs[3]]
    t = ids.shape[1]
    return ((vocab[ids] + typ[0]) + pos[None, :t]).astype(np.float32)


def _eps(op: Op) -> np.float32:
    return np.array([op.attrs[A.ATTR_EPS]], np.int32).view(np.float32)[0]


def _norm(g: Graph, op: Op, v: dict) -> np.ndarray:
    x = v[op.inputs[0]].astype(np.float32)
    h = np.float32(x.shape[-1])
    if op.op == L.OP_RMSNORM:  # as ggml: float squares summed in double, the mean rounded to float
        ms = ((x * x).astype(np.float64).sum(axis=-1, keepdims=True) / np.float64(h)).astype(np.float32)
        inv = np.float32(1) / np.sqrt(ms + _eps(op))
        return ((x * inv) * v[op.inputs[1]]).astype(np.float32)
    mean = x.sum(axis=-1, keepdims=True) / h
    d = x - mean
    inv = np.float32(1) / np.sqrt((d * d).sum(axis=-1, keepdims=True) / h + _eps(op))
    return ((d * inv) * v[op.inputs[1]] + v[op.inputs[2]]).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + erf(x / sqrt 2)) in fp32 (numpy has no erf: torch's)."""
    import torch

    x = np.asarray(x, np.float32)
    erf = torch.erf(torch.from_numpy(np.ascontiguousarray(x) * np.float32(0.70710678118654752))).numpy()
    return (np.float32(0.5) * x * (np.float32(1) + erf)).astype(np.float32)


def _attention(g: Graph, op: Op, v: dict) -> np.ndarray:
    q, k, val = (v[i].astype(np.float32) for i in op.inputs[:3])
    mask = v[op.inputs[3]] != 0
    n, t, hdim = q.shape
    heads = op.attrs[A.ATTR_HEADS]
    d = hdim // heads
    split = [a.reshape(n, t, heads, d).transpose(0, 2, 1, 3) for a in (q, k, val)]
    scores = split[0] @ split[1].transpose(0, 1, 3, 2) * np.float32(1 / np.sqrt(np.float32(d)))
    scores = np.where(mask[:, None, None, :], scores, -np.inf)
    mx = scores.max(axis=-1, keepdims=True)
    e = np.where(mask[:, None, None, :], np.exp(scores - np.where(np.isfinite(mx), mx, 0)), 0)
    total = e.sum(axis=-1, keepdims=True)
    p = np.where(total > 0, e / np.where(total > 0, total, 1), 0).astype(np.float32)
    return (p @ split[2]).transpose(0, 2, 1, 3).reshape(n, t, hdim).astype(np.float32)


def _meanpool(g: Graph, op: Op, v: dict) -> np.ndarray:
    x = v[op.inputs[0]].astype(np.float32)
    mask = (v[op.inputs[1]] != 0).astype(np.float32)
    count = mask.sum(axis=1, keepdims=True)
    y = np.where(count > 0, (x * mask[:, :, None]).sum(axis=1) / np.maximum(count, 1), 0).astype(np.float32)
    if op.attrs[A.ATTR_L2NORM]:
        y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), np.float32(1e-12))
    return y.astype(np.float32)


_ENCODER_OPS = {L.OP_LINEAR_DYN: _linear_dyn, L.OP_EMBED: _embed, L.OP_LAYERNORM: _norm, L.OP_RMSNORM: _norm,
                L.OP_ATTENTION: _attention, L.OP_MEANPOOL: _meanpool}


def _run_op(g: Graph, op: Op, v: dict) -> np.ndarray:
    xt, yt = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    x = v[op.inputs[0]]
    if op.op == L.OP_LINEAR:
        return _linear(g, op, v)
    if op.op in (L.OP_CONV2D, L.OP_DWCONV2D):
        return _conv(g, op, v)
    if op.op in (L.OP_MAXPOOL2D, L.OP_AVGPOOL2D):
        return _pool(g, op, v)
    if op.op == L.OP_RELU:
        return np.maximum(x, np.int8(xt.qzero))
    if op.op in _ENCODER_OPS:
        return _ENCODER_OPS[op.op](g, op, v)
    if op.op == L.OP_GELU:
        return gelu(x)
    if op.op == L.OP_RELU2:
        return (np.maximum(x, 0) ** 2).astype(np.float32)
    if op.op == L.OP_ADD:
        if xt.format == F.FMT_F32:
            return (x + v[op.inputs[1]]).astype(np.float32)
        return _add(g, op, v)
    if op.op == L.OP_RESHAPE:
        return x.reshape((x.shape[0],) + tuple(yt.shape[1:]))
    if op.op == L.OP_SOFTMAX:
        return _softmax(g, op, v)
    if op.op == L.OP_QUANTIZE:
        return quantize(x, yt.qscale, yt.qzero)
    if op.op == L.OP_DEQUANTIZE:
        return dequantize(x, xt.qscale, xt.qzero)
    if op.op == L.OP_BINARIZE:
        return _binarize(g, op, v)
    raise EdgeqError(f"op {op.name} is not supported by the reference executor")


def run(graph: Graph, inputs: list[np.ndarray], keep_all: bool = False) -> list[np.ndarray] | dict[int, np.ndarray]:
    """Runs the graph on `inputs` (one array per graph input, batch first)."""
    if len(inputs) != len(graph.inputs):
        raise EdgeqError(f"model takes {len(graph.inputs)} input(s), got {len(inputs)}")
    values: dict[int, np.ndarray] = {}
    for i, t in enumerate(graph.tensors):
        if t.array is not None:
            values[i] = t.array
    for idx, arr in zip(graph.inputs, inputs):
        t = graph.tensors[idx]
        arr = np.asarray(arr)
        if tuple(arr.shape[1:]) != tuple(t.shape[1:]):
            raise EdgeqError(f"input {t.name}: expected shape [N, {', '.join(map(str, t.shape[1:]))}], "
                             f"got {list(arr.shape)}")
        values[idx] = arr.astype(np.float32) if t.format == F.FMT_F32 else arr
    for k, op in enumerate(graph.ops):
        missing = [i for i in op.inputs if i >= 0 and i not in values and graph.tensors[i].packed is None]
        if missing:
            raise EdgeqError(f"op {k} ({op.name}): tensor {graph.tensors[missing[0]].name} used before it is produced")
        values[op.outputs[0]] = _run_op(graph, op, values)
    if keep_all:
        return values
    return [values[i] for i in graph.outputs]
