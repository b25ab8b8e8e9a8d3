"""Trains a tiny llama-architecture language model with ternary QAT (BitNet b1.58 style: absmean
ternary weights, absmax int8 activations per token, straight-through gradients) on the Python
standard library's docstrings, and writes it as a GGUF file with TQ2_0 linears that llama.cpp and
edgeq both load. The committed models/tiny-llm-tq2_0.gguf came from the defaults below, so tests never
retrain.

    .venv/bin/python examples/tiny-llm/train.py [--steps 800] [--minutes 12] [-o models/tiny-llm-tq2_0.gguf]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from corpus import stdlib_docstrings


@dataclass(frozen=True)
class Config:
    vocab: int = 1024
    dim: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    ffn: int = 768
    context: int = 256
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


def ternary_ste(w: torch.Tensor) -> torch.Tensor:
    """absmean ternary (BitNet b1.58): s * clip(round(w / s), -1, 1), s = mean|w|."""
    s = w.abs().mean().clamp(min=1e-5)
    return w + ((w / s).round().clamp(-1, 1) * s - w).detach()


def act_quant_ste(x: torch.Tensor) -> torch.Tensor:
    """int8 absmax per token, as BitNet quantizes a linear's input."""
    s = 127.0 / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
    return x + ((x * s).round().clamp(-128, 127) / s - x).detach()


class BitLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(act_quant_ste(x), ternary_ste(self.weight))


def rope(x: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary embedding on adjacent pairs (x[2i], x[2i+1]): ggml's "normal" RoPE used by LLM_ARCH_LLAMA."""
    t, d = x.shape[-2:]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    ang = torch.arange(t, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.attn_norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.q = BitLinear(c.dim, c.dim, bias=False)
        self.k = BitLinear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.v = BitLinear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.o = BitLinear(c.dim, c.dim, bias=False)
        self.ffn_norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.gate = BitLinear(c.dim, c.ffn, bias=False)
        self.up = BitLinear(c.dim, c.ffn, bias=False)
        self.down = BitLinear(c.ffn, c.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, (b, t, _) = self.c, x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.k(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v(h).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = rope(q, c.rope_base), rope(k, c.rope_base)
        rep = c.heads // c.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, c.dim))
        h = self.ffn_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class TinyLlama(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c.vocab, c.dim)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


def train_tokenizer(text: str, vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(text.split("\n\n"), trainer=trainer)
    return tok


def write_gguf(model: TinyLlama, tok, path: Path, meta: dict) -> None:
    """GGUF (arch llama, gpt2 BPE tokenizer): TQ2_0 for every block linear, Q8_0 embeddings and head."""
    from edgeq.llm.gguf_llama import LlamaParams
    from edgeq.llm.gguf_write import TokenizerMeta, write_llama_gguf

    c = model.c
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = json.loads(tok.to_str())["model"]["merges"]
    meta_tok = TokenizerMeta(tokens, [m if isinstance(m, str) else " ".join(m) for m in merges],
                             frozenset({"<s>", "</s>"}), vocab["<s>"], vocab["</s>"])
    params = LlamaParams(vocab=c.vocab, dim=c.dim, layers=c.layers, heads=c.heads, kv_heads=c.kv_heads, ffn=c.ffn,
                         context=c.context, rope_base=c.rope_base, rope_dims=c.head_dim, norm_eps=c.norm_eps)

    def tensors():
        def t(x: torch.Tensor) -> np.ndarray:
            return x.detach().float().numpy()

        yield "token_embd.weight", t(model.embed.weight), "Q8_0"
        for i, b in enumerate(model.blocks):
            yield f"blk.{i}.attn_norm.weight", t(b.attn_norm.weight), "F32"
            for name, lin in (("attn_q", b.q), ("attn_k", b.k), ("attn_v", b.v), ("attn_output", b.o),
                              ("ffn_gate", b.gate), ("ffn_up", b.up), ("ffn_down", b.down)):
                yield f"blk.{i}.{name}.weight", t(ternary_ste(lin.weight)), "TQ2_0"
            yield f"blk.{i}.ffn_norm.weight", t(b.ffn_norm.weight), "F32"
        yield "output_norm.weight", t(model.norm.weight), "F32"
        yield "output.weight", t(model.head.weight), "Q8_0"

    write_llama_gguf(path, params, meta_tok, tensors(), "edgeq-tiny-llm", meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--minutes", type=float, default=12.0, help="stop early after this much training time")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", type=Path, default=HERE / "models" / "tiny-llm-tq2_0.gguf")
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    c = Config()
    text = stdlib_docstrings()
    tok = train_tokenizer(text, c.vocab)
    bos = tok.token_to_id("<s>")
    ids = []
    for doc in text.split("\n\n"):
        ids += [bos] + tok.encode(doc).ids
    data = torch.tensor(ids, dtype=torch.long)
    split = int(len(data) * 0.95)
    train, val = data[:split], data[split:]
    print(f"corpus {len(text):,} chars -> {len(data):,} tokens (vocab {c.vocab}); "
          f"train {len(train):,} / held out {len(val):,}")
    model = TinyLlama(c)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters, config {asdict(c)}")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))
    gen = torch.Generator().manual_seed(a.seed)

    def batch(src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.randint(0, len(src) - a.seq - 1, (a.batch,), generator=gen)
        x = torch.stack([src[j:j + a.seq + 1] for j in i.tolist()])
        return x[:, :-1], x[:, 1:]

    t0 = time.monotonic()
    step = 0
    for step in range(a.steps):
        x, y = batch(train)
        loss = F.cross_entropy(model(x).reshape(-1, c.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.monotonic() - t0:6.0f} s", flush=True)
        if time.monotonic() - t0 > a.minutes * 60:
            print(f"time budget reached at step {step}")
            break
    model.eval()
    with torch.no_grad():
        xs, ys = zip(*(batch(val) for _ in range(8)))
        val_loss = F.cross_entropy(model(torch.cat(xs)).reshape(-1, c.vocab), torch.cat(ys).reshape(-1)).item()
    print(f"held-out loss {val_loss:.3f} (perplexity {math.exp(val_loss):.1f}) after {step + 1} steps")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"steps": step + 1, "val_loss": round(val_loss, 4), "params": n_params, "seed": a.seed,
            "data": "Python stdlib docstrings", "qat": "ternary absmean weights, int8 absmax activations"}
    write_gguf(model, tok, a.out, meta)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
