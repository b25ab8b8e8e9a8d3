"""A llama-architecture GGUF -> an edgeq decoder graph (docs/llm.md).

One token is one sample: the graph takes `tokens` and `positions` (I32 [N, 1]) and returns the logits
of every token of the step (F32 [N, vocab]), reading and writing a KV cache held in STATE tensors of
the arena. Weights keep their GGUF values bit for bit: TQ2_0 -> T2, TQ1_0 -> T158, Q4_0 -> Q4 (group
32), Q8_0 -> I8 with fp16 block scales; F16/F32 matrices are quantized Q8_0-style to I8 blocks (the
only lossy case, named in the metadata). Norm weights and the RoPE cos/sin table are F32 constants.

Two activation modes (edgeq.llm.reference): "edgeq" (int8 absmax per token, fp32 cache) and
"llamacpp" (GGML Q8_K / Q8_0 activation blocks, fp16 cache, q and softmax rounded to fp16).
"""

from __future__ import annotations

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import ids as F
from edgeq.formats.gguf import from_gguf
from edgeq.formats.i8 import FORMAT as I8
from edgeq.formats.packed import PackedTensor
from edgeq.graph import Graph, Tensor
from edgeq.llm.gguf_llama import LlamaModel
from edgeq.llm.reference import MODES

_EXACT = ("TQ2_0", "TQ1_0", "Q4_0", "Q8_0")
# GGML weight type -> LINEAR_DYN activation quantization in llama.cpp mode
_GGML_ACT = {"TQ2_0": L.ACT_GGML_Q8_K, "TQ1_0": L.ACT_GGML_Q8_K, "Q4_0": L.ACT_GGML_Q8_0, "Q8_0": L.ACT_GGML_Q8_0,
             "F16": L.ACT_GGML_Q8_0, "F32": L.ACT_GGML_Q8_0}


def _f32_bits(x: float) -> int:
    return int(np.array([x], np.float32).view(np.int32)[0])


def q8_0_blocks(values: np.ndarray):
    """F16/F32 matrix -> I8 with an fp16 scale per 32 (ggml's Q8_0 rounding: d = amax / 127)."""
    rows, cols = values.shape
    pad = -cols % 32
    v = np.pad(values.astype(np.float32), ((0, 0), (0, pad))).reshape(rows, -1, 32)
    d = (np.abs(v).max(axis=-1) / np.float32(127)).astype(np.float16)
    df = d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(df[..., None] > 0, np.rint(v / df[..., None]), 0)
    q = np.clip(q, -127, 127).astype(np.int8).reshape(rows, -1)[:, :cols]
    return I8.pack(q, d, scale_kind=F.SCALE_BLOCK, block=F.I8_SCALE_BLOCK)


def packed_weight(w, row_scales: bool = False) -> object:
    """A GGUF weight -> PackedTensor with the same values (F16/F32: Q8_0-style blocks).

    row_scales: a ternary tensor whose blocks all carry their row's scale -- BitNet b1.58 has one absmean
    scale per tensor, which TQ2_0/TQ1_0 repeat in every block -- becomes SCALE_ROW: the same values, summed
    in int32 per row by the faster row kernels instead of combined block by block in fp32."""
    if w.ggml_type not in _EXACT:
        return q8_0_blocks(w.values)
    p = from_gguf(w.ggml_type, w.raw, w.values.shape)
    if row_scales and w.ggml_type in ("TQ2_0", "TQ1_0") and np.all(p.scales == p.scales[:, :1]):
        p = PackedTensor(p.format, p.name, p.rows, p.cols, p.block, F.SCALE_ROW, p.codes,
                         np.ascontiguousarray(p.scales[:, 0].astype(np.float32)))
    return p


def rope_table(p) -> np.ndarray:
    """[context, head_dim]: cos(pos * base^(-2i/d)) for i < d/2, then the sines (float64, rounded to fp32)."""
    inv = p.rope_base ** (-np.arange(0, p.head_dim, 2, dtype=np.float64) / p.head_dim)
    ang = np.arange(p.context, dtype=np.float64)[:, None] * inv[None, :]
    return np.concatenate([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)


def llama_graph(model: LlamaModel, mode: str = "edgeq") -> Graph:
    if mode not in MODES:
        raise EdgeqError(f"unknown activation mode '{mode}'; choose from {', '.join(MODES)}")
    p = model.params
    llama = mode == "llamacpp"
    g = Graph()
    kv = p.kv_heads * p.head_dim
    tokens = g.activation("tokens", F.FMT_I32, (1, 1))
    positions = g.activation("positions", F.FMT_I32, (1, 1))
    g.inputs = [tokens, positions]
    packed: dict[str, int] = {}
    lossy: list[str] = []

    def weight(name: str) -> int:
        if name not in packed:
            w = model.weights[name]
            if w.ggml_type not in _EXACT:
                lossy.append(name)
            pt = packed_weight(w, row_scales=not llama)
            packed[name] = g.add(Tensor(name, pt.format, (pt.rows, pt.cols), packed=pt, flags=L.TENSOR_CONST))
        return packed[name]

    def act(name: str, width: int) -> int:
        return g.activation(name, F.FMT_F32, (1, width))

    def linear(x: int, name: str, out: str) -> int:
        w = weight(name)
        rows = g.tensors[w].shape[0]
        bias = g.const(name + ".bias", np.zeros(rows, np.float32))
        y = act(out, rows)
        quant = _GGML_ACT[model.weights[name].ggml_type] if llama else L.ACT_ABSMAX_ROW
        g.add_op(L.OP_LINEAR_DYN, [x, w, bias], [y], {L.ATTR_ACT_QUANT: quant})
        return y

    def norm(x: int, name: str, out: str) -> int:
        y = act(out, p.dim)
        g.add_op(L.OP_RMSNORM, [x, g.const(name, model.w(name).astype(np.float32))], [y],
                 {L.ATTR_EPS: _f32_bits(p.norm_eps)})
        return y

    def add(a: int, b: int, out: str) -> int:
        y = act(out, p.dim)
        g.add_op(L.OP_ADD, [a, b], [y])
        return y

    emb = model.weights["token_embd.weight"]
    table = (g.add(Tensor(emb.name, F.FMT_I8, emb.values.shape, packed=packed_weight(emb), flags=L.TENSOR_CONST))
             if emb.ggml_type == "Q8_0" else g.const(emb.name, emb.values.astype(np.float32)))
    x = act("embed", p.dim)
    g.add_op(L.OP_EMBED, [tokens, table], [x])
    rope = g.const("rope_table", rope_table(p))
    cache_fmt = F.FMT_F16 if llama else F.FMT_F32
    for i in range(p.layers):
        b = f"blk.{i}."
        h = norm(x, b + "attn_norm.weight", b + "attn_in")
        q = linear(h, b + "attn_q.weight", b + "q")
        k = linear(h, b + "attn_k.weight", b + "k")
        v = linear(h, b + "attn_v.weight", b + "v")
        qr, kr = act(b + "q_rope", p.dim), act(b + "k_rope", kv)
        g.add_op(L.OP_ROPE, [q, positions, rope], [qr], {L.ATTR_HEADS: p.heads})
        g.add_op(L.OP_ROPE, [k, positions, rope], [kr], {L.ATTR_HEADS: p.kv_heads})
        caches = [g.add(Tensor(b + name, cache_fmt, (p.context, kv), flags=L.TENSOR_STATE)) for name in ("k_cache", "v_cache")]
        att = act(b + "attn", p.dim)
        g.add_op(L.OP_ATTENTION_KV, [qr, kr, v, positions, *caches], [att],
                 {L.ATTR_HEADS: p.heads, L.ATTR_KV_HEADS: p.kv_heads, L.ATTR_F16_ROUND: int(llama)})
        x = add(x, linear(att, b + "attn_output.weight", b + "attn_out"), b + "resid_attn")
        h = norm(x, b + "ffn_norm.weight", b + "ffn_in")
        gate = linear(h, b + "ffn_gate.weight", b + "gate")
        up = linear(h, b + "ffn_up.weight", b + "up")
        s = act(b + "swiglu", p.ffn)
        g.add_op(L.OP_SWIGLU, [gate, up], [s])
        x = add(x, linear(s, b + "ffn_down.weight", b + "ffn_out"), b + "resid_ffn")
    logits = linear(norm(x, "output_norm.weight", "final_norm"), "output.weight", "logits")
    g.outputs = [logits]
    g.tensors[tokens].flags |= L.TENSOR_INPUT
    g.tensors[positions].flags |= L.TENSOR_INPUT
    g.tensors[logits].flags |= L.TENSOR_OUTPUT
    g.metadata = {"kind": "llm", "llm": {
        "architecture": "llama", "mode": mode, "source": model.path.name,
        "params": {k: getattr(p, k) for k in ("vocab", "dim", "layers", "heads", "kv_heads", "ffn", "context",
                                              "rope_base", "norm_eps")},
        "weight_types": sorted({w.ggml_type for w in model.weights.values()}),
        "requantized": lossy,
        "tokenizer": {"model": model.tokenizer_model, "tokens": model.tokens, "merges": model.merges,
                      "bos": model.bos, "eos": model.eos, "add_bos": model.add_bos}}}
    return g
