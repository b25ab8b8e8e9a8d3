"""Single-op graphs of the transformer encoder ops (docs/transformers.md), shared by tests/test_encoder.py
in-process and under ASan in a subprocess."""

from __future__ import annotations

import numpy as np

from edgeq.blob import layout as L
from edgeq.formats import ids as F
from edgeq.graph import Graph, Tensor
from edgeq.quant import quantize_weight

N, T, H, HEADS, VOCAB = 3, 23, 40, 5, 50  # 3 * 23 = 69 token rows > 64: LINEAR_DYN chunks its tiles


def _eps_bits(eps: float) -> int:
    return int(np.array([eps], np.float32).view(np.int32)[0])


def _io(g: Graph, shapes: list[tuple[int, tuple, int]], out_fmt: int, out_shape: tuple) -> int:
    for name, shape, fmt in shapes:
        t = g.activation(name, fmt, shape)
        g.tensors[t].flags |= L.TENSOR_INPUT
        g.inputs.append(t)
    y = g.activation("y", out_fmt, out_shape)
    g.tensors[y].flags |= L.TENSOR_OUTPUT
    g.outputs = [y]
    return y


def op_graph(op: str, rng: np.random.Generator, fmt: str = "q4", cols: int = H) -> tuple[Graph, list[np.ndarray]]:
    """A graph with one encoder op and random parameters, plus random inputs for N samples."""
    g = Graph()
    x3 = rng.normal(0, 1.5, (N, T, H)).astype(np.float32)
    mask = (rng.random((N, T)) < 0.7).astype(np.int32)
    mask[:, 0] = 1
    mask[-1] = 0  # a sample without valid tokens: attention and pooling give zeros
    if op == "linear_dyn":
        rows = 37
        x = rng.normal(0, 1.0, (N, T, cols)).astype(np.float32)
        x[0, 1] = 0.0  # an all-zero token row
        x[1, 2, 3] = 40.0  # an outlier
        y = _io(g, [("x", (1, T, cols), F.FMT_F32)], F.FMT_F32, (1, T, rows))
        packed = quantize_weight(rng.normal(0, 0.1, (rows, cols)).astype(np.float32), fmt, group=32)
        w = g.add(Tensor("w", packed.format, (rows, cols), packed=packed, flags=L.TENSOR_CONST))
        g.add_op(L.OP_LINEAR_DYN, [0, w, g.const("b", rng.normal(0, 0.1, rows).astype(np.float32))], [y])
        return g, [x]
    if op == "embed":
        ids = rng.integers(0, VOCAB, (N, T)).astype(np.int32)
        y = _io(g, [("ids", (1, T), F.FMT_I32)], F.FMT_F32, (1, T, H))
        word = rng.normal(0, 0.2, (VOCAB, H)).astype(np.float32)
        if fmt == "i8":
            packed = quantize_weight(word, "i8")
            table = g.add(Tensor("word", packed.format, (VOCAB, H), packed=packed, flags=L.TENSOR_CONST))
        else:
            table = g.const("word", word)
        g.add_op(L.OP_EMBED, [0, table, g.const("pos", rng.normal(0, 0.2, (T + 5, H)).astype(np.float32)),
                              g.const("type", rng.normal(0, 0.2, (2, H)).astype(np.float32))], [y])
        return g, [ids]
    if op in ("layernorm", "rmsnorm"):
        y = _io(g, [("x", (1, T, H), F.FMT_F32)], F.FMT_F32, (1, T, H))
        params = [g.const("gamma", rng.normal(1, 0.2, H).astype(np.float32))]
        if op == "layernorm":
            params.append(g.const("beta", rng.normal(0, 0.2, H).astype(np.float32)))
        code = L.OP_LAYERNORM if op == "layernorm" else L.OP_RMSNORM
        g.add_op(code, [0, *params], [y], {L.ATTR_EPS: _eps_bits(1e-12 if op == "layernorm" else 1e-6)})
        return g, [x3]
    if op in ("gelu", "relu2"):
        y = _io(g, [("x", (1, T, H), F.FMT_F32)], F.FMT_F32, (1, T, H))
        g.add_op(L.OP_GELU if op == "gelu" else L.OP_RELU2, [0], [y])
        return g, [x3 * 2]
    if op == "add":
        y = _io(g, [("a", (1, T, H), F.FMT_F32), ("b", (1, T, H), F.FMT_F32)], F.FMT_F32, (1, T, H))
        g.add_op(L.OP_ADD, [0, 1], [y])
        return g, [x3, rng.normal(0, 1, x3.shape).astype(np.float32)]
    if op == "attention":
        ins = [(n, (1, T, H), F.FMT_F32) for n in "qkv"] + [("mask", (1, T), F.FMT_I32)]
        y = _io(g, ins, F.FMT_F32, (1, T, H))
        g.add_op(L.OP_ATTENTION, [0, 1, 2, 3], [y], {L.ATTR_HEADS: HEADS})
        return g, [rng.normal(0, 1, (N, T, H)).astype(np.float32) for _ in range(3)] + [mask]
    if op == "meanpool":
        y = _io(g, [("x", (1, T, H), F.FMT_F32), ("mask", (1, T), F.FMT_I32)], F.FMT_F32, (1, H))
        g.add_op(L.OP_MEANPOOL, [0, 1], [y], {L.ATTR_L2NORM: 1})
        return g, [x3, mask]
    raise ValueError(op)


# (op, weight/table format) pairs; tolerance per op in check_op (docs/transformers.md)
CASES = [("linear_dyn", f) for f in ("t2", "t158", "q4", "i8")] + [("embed", "f32"), ("embed", "i8")] + [
    (op, "") for op in ("layernorm", "rmsnorm", "gelu", "relu2", "add", "attention", "meanpool")]
EXACT = {"linear_dyn", "embed", "relu2", "add"}  # fixed fp32 operation sequences: bit-exact
RTOL, ATOL = 2e-5, 2e-6  # ops with libm (expf, erff, sqrtf) or a different summation order


def check_op(path, op: str, fmt: str, seed: int, sanitize: bool = False, tier: str = "auto") -> None:
    from edgeq import reference
    from edgeq.blob import write_blob
    from edgeq.runtime import Session

    g, inputs = op_graph(op, np.random.default_rng(seed), fmt, cols=301 if op == "linear_dyn" else H)
    write_blob(g, path)
    want = reference.run(g, inputs)[0]
    got = Session(path, threads=2, max_batch=N, sanitize=sanitize, tier=tier).run(inputs)[0]
    if op in EXACT:
        np.testing.assert_array_equal(got, want, err_msg=f"{op}/{fmt}")
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{op}/{fmt}")
