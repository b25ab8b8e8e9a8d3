"""Synthetic quantized graphs that exercise every op and every weight format / scale kind of the C
runtime (shared by tests/test_runtime_binding.py in-process and under ASan in a subprocess)."""

from __future__ import annotations

import numpy as np

from edgeq.blob import layout as L
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.graph import Graph
from edgeq.quant.fixedpoint import quantize_multiplier


def _values(rng: np.random.Generator, fmt: str, rows: int, cols: int, block: int, zeros: bool):
    """Random integer weights of a format (+ Q4 zero points)."""
    if fmt == "q4":
        nb = -(-cols // block)
        z = rng.integers(0, 16, (rows, nb)).astype(np.uint8) if zeros else None
        u = rng.integers(0, 16, (rows, nb * block))
        vals = u - (np.repeat(z.astype(np.int64), block, axis=1) if zeros else 8)
        return vals[:, :cols].astype(np.int8), z
    lo, hi = {"t2": (-1, 1), "t158": (-1, 1), "b1": (-1, 1), "i8": (-128, 127)}[fmt]
    vals = rng.integers(lo, hi + 1, (rows, cols))
    if fmt == "b1":
        vals = np.where(vals >= 0, 1, -1)
    return vals.astype(np.int8), None


def weighted(g: Graph, rng: np.random.Generator, op: int, x: int, fmt: str, kind: int, rows: int, cols: int,
             out_shape: tuple, out_f32: bool = False, block: int | None = None, zeros: bool = False,
             attrs: dict | None = None) -> int:
    """Adds LINEAR/CONV2D/DWCONV2D with random weights and valid requantization parameters."""
    f = FORMATS[fmt]
    block = block or f.block
    vals, z = _values(rng, fmt, rows, cols, block, zeros)
    nb = -(-cols // block)
    scales = (rng.uniform(0.01, 0.05, rows).astype(np.float32) if kind == F.SCALE_ROW
              else rng.uniform(-0.05, 0.05, (rows, nb)).astype(np.float16))
    packed = f.pack(vals, scales, z, scale_kind=kind, block=block)
    from edgeq.graph import Tensor

    w = g.add(Tensor(f"w{len(g.tensors)}", packed.format, (rows, cols), packed=packed, flags=L.TENSOR_CONST))
    if kind == F.SCALE_ROW:
        extra = [g.const(f"b{w}", rng.integers(-3000, 3000, rows).astype(np.int32))]
        if out_f32:
            extra.append(g.const(f"s{w}", rng.uniform(1e-3, 1e-2, rows).astype(np.float32)))
        else:
            mult, shift = zip(*(quantize_multiplier(r) for r in rng.uniform(1e-4, 2e-2, rows)))
            extra += [g.const(f"m{w}", np.array(mult, np.int32)), g.const(f"h{w}", np.array(shift, np.int32))]
    else:
        extra = [g.const(f"b{w}", rng.normal(0, 20, rows).astype(np.float32)),
                 g.const(f"m{w}", rng.uniform(0.05, 0.3, rows).astype(np.float32))]
    if out_f32:
        y = g.activation(f"y{w}", F.FMT_F32, out_shape)
    else:
        y = g.activation(f"y{w}", F.FMT_I8, out_shape, 0.05, int(rng.integers(-20, 20)))
    zp = g.tensors[y].qzero
    a = {L.ATTR_ACT_MIN: -128 if out_f32 else int(rng.choice([-128, zp])), L.ATTR_ACT_MAX: 127, **(attrs or {})}
    g.add_op(op, [x, w, *extra], [y], a)
    return y


def window(k: int, s: int, pads: tuple[int, int, int, int]) -> dict[int, int]:
    return {L.ATTR_KH: k, L.ATTR_KW: k, L.ATTR_STRIDE_H: s, L.ATTR_STRIDE_W: s, L.ATTR_PAD_TOP: pads[0],
            L.ATTR_PAD_LEFT: pads[1], L.ATTR_PAD_BOTTOM: pads[2], L.ATTR_PAD_RIGHT: pads[3]}


def all_ops_graph(seed: int, fmt: str, kind: int, block: int | None = None, zeros: bool = False) -> Graph:
    """quantize -> conv2d -> dwconv2d -> avgpool -> maxpool -> relu -> add -> reshape -> linear ->
    binarize -> linear (B1 activations) -> linear (F32 out) -> softmax; outputs: softmax and an I8 tensor."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.activation("x", F.FMT_F32, (1, 7, 6, 3))
    g.tensors[x].flags |= L.TENSOR_INPUT
    q = g.activation("q", F.FMT_I8, (1, 7, 6, 3), 0.03, -5)
    g.add_op(L.OP_QUANTIZE, [x], [q])
    c = weighted(g, rng, L.OP_CONV2D, q, fmt, kind, 8, 3 * 3 * 3, (1, 7, 6, 8), block=block, zeros=zeros,
                 attrs=window(3, 1, (1, 1, 1, 1)))
    d = weighted(g, rng, L.OP_DWCONV2D, c, fmt, kind, 8, 3 * 3, (1, 4, 3, 8), block=block, zeros=zeros,
                 attrs=window(3, 2, (1, 1, 1, 0)))
    ap = g.activation("ap", F.FMT_I8, (1, 4, 3, 8), 0.05, g.tensors[d].qzero)
    g.add_op(L.OP_AVGPOOL2D, [d], [ap], window(3, 1, (1, 1, 1, 1)))
    mp = g.activation("mp", F.FMT_I8, (1, 2, 2, 8), 0.05, g.tensors[d].qzero)
    g.add_op(L.OP_MAXPOOL2D, [ap], [mp], window(2, 2, (0, 0, 1, 1)))
    r = g.activation("r", F.FMT_I8, (1, 2, 2, 8), 0.05, g.tensors[d].qzero)
    g.add_op(L.OP_RELU, [mp], [r])
    s = g.activation("s", F.FMT_I8, (1, 2, 2, 8), 0.07, 3)
    ma, sa = quantize_multiplier(0.05 / 0.1)
    mo, so = quantize_multiplier(0.1 / ((1 << 20) * 0.07))
    g.add_op(L.OP_ADD, [r, mp], [s], {L.ATTR_ACT_MIN: -128, L.ATTR_ACT_MAX: 127, L.ATTR_ADD_LEFT_SHIFT: 20,
                                      L.ATTR_ADD_MULT_A: ma, L.ATTR_ADD_SHIFT_A: sa, L.ATTR_ADD_MULT_B: ma,
                                      L.ATTR_ADD_SHIFT_B: sa, L.ATTR_ADD_MULT_OUT: mo, L.ATTR_ADD_SHIFT_OUT: so})
    flat = g.activation("flat", F.FMT_I8, (1, 32), 0.07, 3)
    g.add_op(L.OP_RESHAPE, [s], [flat])
    h = weighted(g, rng, L.OP_LINEAR, flat, fmt, kind, 300, 32, (1, 300), block=block, zeros=zeros)
    bits = g.activation("bits", F.FMT_B1, (1, 300), 1.0, 0)
    g.add_op(L.OP_BINARIZE, [h], [bits])
    h2 = weighted(g, rng, L.OP_LINEAR, bits, "t2", F.SCALE_ROW, 40, 300, (1, 40))
    h3 = weighted(g, rng, L.OP_LINEAR, bits, "b1", F.SCALE_ROW, 24, 300, (1, 24))  # XNOR-popcount
    logits = weighted(g, rng, L.OP_LINEAR, h2, fmt, kind, 10, 40, (1, 10), out_f32=True, block=block, zeros=zeros)
    p = g.activation("p", F.FMT_F32, (1, 10))
    g.add_op(L.OP_SOFTMAX, [logits], [p])
    g.inputs = [x]
    g.outputs = [p, h3, logits]
    for t in g.outputs:
        g.tensors[t].flags |= L.TENSOR_OUTPUT
    return g


CONFIGS = [("t2", F.SCALE_ROW, None, False), ("t2", F.SCALE_BLOCK, None, False), ("t158", F.SCALE_ROW, None, False),
           ("t158", F.SCALE_BLOCK, None, False), ("b1", F.SCALE_ROW, None, False), ("i8", F.SCALE_ROW, None, False),
           ("q4", F.SCALE_BLOCK, 32, False), ("q4", F.SCALE_BLOCK, 64, True), ("q4", F.SCALE_BLOCK, 128, True)]


def check_session_matches_reference(path, graph: Graph, x: np.ndarray, **session) -> list[str]:
    """Runs `graph` (written at `path`) in the C runtime and the numpy reference; asserts equality
    (softmax within 1e-6); returns the kernels that ran."""
    from edgeq import reference
    from edgeq.runtime import Session

    s = Session(path, **session)
    got = s.run([x])
    want = reference.run(graph, [x])
    for k, (a, b) in enumerate(zip(got, want)):
        b = np.asarray(b).reshape(a.shape)
        if k == 0 and graph.ops[-1].op == L.OP_SOFTMAX:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {k} {session}")
    return [t[2] for t in s.layer_times]


def with_rows4(g: Graph) -> Graph:
    """`g` with every T2 and Q4 weight stored in LAYOUT_ROWS4 (same values: the reference result is unchanged)."""
    from edgeq.formats.packed import ROWS4_FORMATS

    for t in g.tensors:
        if t.packed is not None and t.packed.format in ROWS4_FORMATS:
            t.packed = t.packed.with_layout(F.LAYOUT_ROWS4)
    return g
