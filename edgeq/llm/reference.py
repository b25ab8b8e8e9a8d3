"""numpy reference of a llama-architecture decoder (docs/llm.md): the spec the C runtime's transformer
path is tested against, and the way edgeq checks itself against llama.cpp.

Two activation modes for the quantized linears:
  "edgeq"     BitNet b1.58: int8 absmax per token into every linear, fp32 KV cache.
  "llamacpp"  what llama.cpp's CPU backend computes: Q8_K blocks of 256 for TQ1_0/TQ2_0 weights,
              Q8_0 blocks of 32 for Q4_0/Q8_0, fp16 activations for F16 weights; an fp16 KV cache,
              Q rounded to fp16 before Q.K and the softmax rounded to fp16 before .V.
Weights are used at their exact stored values (dequantized once), so only activation rounding and
summation order separate the two programs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.llm.gguf_llama import LlamaModel

MODES = ("edgeq", "llamacpp")
_Q8K_TYPES = ("TQ1_0", "TQ2_0")
_Q80_TYPES = ("Q4_0", "Q8_0")


def f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float32)


def quant_absmax_token(x: np.ndarray) -> np.ndarray:
    """int8 absmax per row (BitNet): round(x * 127 / max|x|) * max|x| / 127."""
    amax = np.abs(x).max(axis=-1, keepdims=True)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1))
    return np.clip(np.rint(x / scale), -128, 127).astype(np.float32) * scale


def quant_q8_k(x: np.ndarray) -> np.ndarray:
    """ggml quantize_row_q8_K: per 256 block, iscale = -127 / (the value of largest magnitude, first
    one on ties), q = min(127, rint(iscale * x)), d = 1 / iscale (fp32)."""
    rows, k = x.shape
    b = x.reshape(rows, k // 256, 256).astype(np.float32)
    idx = np.abs(b).argmax(axis=-1)[..., None]
    mx = np.take_along_axis(b, idx, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(mx != 0, np.float32(-127) / mx, np.float32(0)).astype(np.float32)
        q = np.minimum(127, np.rint((iscale * b).astype(np.float32)))
        d = np.where(mx != 0, np.float32(1) / iscale, np.float32(0)).astype(np.float32)
    return (q * d).reshape(rows, k)


def quant_q8_0(x: np.ndarray) -> np.ndarray:
    """ggml quantize_row_q8_0 (x86): per 32 block, d = amax / 127, q = rint(x / d) with the fp32
    inverse, d stored as fp16."""
    rows, k = x.shape
    b = x.reshape(rows, k // 32, 32).astype(np.float32)
    d = np.abs(b).max(axis=-1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d > 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    return (np.rint(b * inv) * f16(d)).reshape(rows, k)


@dataclass
class KVCache:
    k: np.ndarray  # [layers, kv_heads, context, head_dim]
    v: np.ndarray
    n: int = 0


@dataclass
class Decoder:
    model: LlamaModel
    mode: str = "edgeq"
    cache: KVCache = field(init=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EdgeqError(f"unknown activation mode '{self.mode}'; choose from {', '.join(MODES)}")
        p = self.model.params
        shape = (p.layers, p.kv_heads, p.context, p.head_dim)
        self.cache = KVCache(np.zeros(shape, np.float32), np.zeros(shape, np.float32))

    def reset(self) -> None:
        self.cache.n = 0

    def _act(self, x: np.ndarray, wtype: str) -> np.ndarray:
        if self.mode == "edgeq":
            return x if wtype == "F32" else quant_absmax_token(x)
        if wtype in _Q8K_TYPES:
            return quant_q8_k(x)
        if wtype in _Q80_TYPES:
            return quant_q8_0(x)
        return f16(x) if wtype == "F16" else x

    def linear(self, name: str, x: np.ndarray) -> np.ndarray:
        w = self.model.weights[name]
        return (self._act(x, w.ggml_type).astype(np.float64) @ w.values.T.astype(np.float64)).astype(np.float32)

    def rms_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        eps = self.model.params.norm_eps
        ms = (x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True)
        return (x / np.sqrt(ms + eps).astype(np.float32)) * self.model.w(name)

    def rope(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """ggml's normal RoPE (LLM_ARCH_LLAMA): adjacent pairs (x[2i], x[2i+1]) rotated by
        pos * base^(-2i/d). x: [heads, tokens, head_dim]."""
        p = self.model.params
        inv = p.rope_base ** (-np.arange(0, p.head_dim, 2, dtype=np.float64) / p.head_dim)
        ang = pos[:, None].astype(np.float64) * inv[None, :]
        cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def forward(self, tokens: list[int]) -> np.ndarray:
        """Appends tokens to the cache; returns their logits [len(tokens), vocab]."""
        p, c = self.model.params, self.cache
        t = len(tokens)
        if t == 0:
            return np.zeros((0, p.vocab), np.float32)
        if c.n + t > p.context:
            raise EdgeqError(f"{c.n + t} tokens exceed the model's context of {p.context}")
        if min(tokens) < 0 or max(tokens) >= p.vocab:
            raise EdgeqError(f"token id out of range 0..{p.vocab - 1}")
        pos = np.arange(c.n, c.n + t)
        x = self.model.w("token_embd.weight")[np.asarray(tokens)]
        llama = self.mode == "llamacpp"
        rep = p.heads // p.kv_heads
        mask = np.where(np.arange(c.n + t)[None, :] <= pos[:, None], 0.0, -np.inf).astype(np.float32)
        for i in range(p.layers):
            b = f"blk.{i}."
            h = self.rms_norm(x, b + "attn_norm.weight")
            q = self.linear(b + "attn_q.weight", h).reshape(t, p.heads, p.head_dim).transpose(1, 0, 2)
            k = self.linear(b + "attn_k.weight", h).reshape(t, p.kv_heads, p.head_dim).transpose(1, 0, 2)
            v = self.linear(b + "attn_v.weight", h).reshape(t, p.kv_heads, p.head_dim).transpose(1, 0, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            c.k[i, :, c.n:c.n + t] = f16(k) if llama else k
            c.v[i, :, c.n:c.n + t] = f16(v) if llama else v
            keys, vals = c.k[i, :, : c.n + t], c.v[i, :, : c.n + t]
            out = np.empty((p.heads, t, p.head_dim), np.float32)
            for hh in range(p.heads):
                qh = f16(q[hh]) if llama else q[hh]
                s = (qh @ keys[hh // rep].T) / np.float32(np.sqrt(p.head_dim)) + mask
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s = s / s.sum(axis=-1, keepdims=True)
                out[hh] = (f16(s) if llama else s) @ vals[hh // rep]
            x = x + self.linear(b + "attn_output.weight", out.transpose(1, 0, 2).reshape(t, p.dim))
            h = self.rms_norm(x, b + "ffn_norm.weight")
            g = self.linear(b + "ffn_gate.weight", h)
            u = self.linear(b + "ffn_up.weight", h)
            x = x + self.linear(b + "ffn_down.weight", (g / (1 + np.exp(-g))) * u)
        c.n += t
        return self.linear("output.weight", self.rms_norm(x, "output_norm.weight"))

    def greedy(self, prompt: list[int], n: int) -> list[int]:
        self.reset()
        logits = self.forward(prompt)
        out: list[int] = []
        for _ in range(n):
            nxt = int(np.argmax(logits[-1]))
            out.append(nxt)
            if len(out) == n:
                break
            logits = self.forward([nxt])
        return out
