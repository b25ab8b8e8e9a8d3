"""A synthetic llama GGUF with BitNet b1.58 2B4T layer shapes and random ternary weights, for speed
benchmarks (benchmarks/bench_llm.py): loadable by edgeq.llm.load_llama and by llama.cpp.

Shapes per layer as in BitNet b1.58 2B4T: width 2560, SwiGLU FFN 6912, 20 heads / 5 KV heads (head dim
128), RMSNorm; 4 layers by default (the real model has 30), context 512. The block linears are random
Gaussian matrices ternarized the BitNet way (absmean, clip(round(w / mean|w|), -1, 1) * mean|w|), with
the absmean taken per tensor as BitNet b1.58 does (scale="tensor": every TQ2_0 block carries the same d)
or per 256-weight block (scale="block"); either way TQ2_0 stores the values exactly (its per-block fp16
d is the scale).

Vocabulary: the real 2B4T vocabulary has 128256 tokens, and its 328 M-weight head would dominate a
4-layer model; this file instead reuses the tiny model's 1024-token gpt2 BPE (examples/tiny-llm) with a
Q8_0 embedding and head, so the decoder layers dominate the time. Files are cached under
~/.cache/edgeq/llm-synth keyed by every parameter (and the seed).

    .venv/bin/python benchmarks/llm_synth.py [--layers 4] [--seed 0] [-o out.gguf]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TINY_GGUF = ROOT / "examples" / "tiny-llm" / "models" / "tiny-llm-tq2_0.gguf"
CACHE = Path(os.environ.get("EDGEQ_LLM_SYNTH_CACHE", Path.home() / ".cache" / "edgeq" / "llm-synth"))
VERSION = 1  # bump when the generator changes, so cached files are rebuilt
LINEAR_SHAPES = {  # name -> (out, in) as functions of (dim, kv_dim, ffn)
    "attn_q": lambda d, kv, f: (d, d), "attn_k": lambda d, kv, f: (kv, d), "attn_v": lambda d, kv, f: (kv, d),
    "attn_output": lambda d, kv, f: (d, d), "ffn_gate": lambda d, kv, f: (f, d), "ffn_up": lambda d, kv, f: (f, d),
    "ffn_down": lambda d, kv, f: (d, f),
}


@dataclass(frozen=True)
class SynthConfig:
    dim: int = 2560
    ffn: int = 6912
    heads: int = 20
    kv_heads: int = 5
    layers: int = 4
    context: int = 512
    rope_base: float = 500000.0  # BitNet 2B4T's rope_theta
    norm_eps: float = 1e-5
    scale: str = "tensor"  # absmean per "tensor" (BitNet b1.58) or per 256-weight "block"
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def key(self) -> str:
        return (f"bitnet2b4t-shape-v{VERSION}-d{self.dim}-f{self.ffn}-h{self.heads}-kv{self.kv_heads}-L{self.layers}"
                f"-ctx{self.context}-rope{self.rope_base:g}-eps{self.norm_eps:g}-scale{self.scale}-seed{self.seed}")


def ternary(rng: np.random.Generator, rows: int, cols: int, per: str) -> np.ndarray:
    """Gaussian [rows, cols] ternarized by absmean per tensor or per 256-weight block (along the input)."""
    w = rng.standard_normal((rows, cols // 256, 256), dtype=np.float32) / np.float32(np.sqrt(cols))
    scale = np.abs(w).mean(axis=-1, keepdims=True) if per == "block" else np.abs(w).mean()
    codes = np.clip(np.rint(w / scale), -1, 1)
    return (codes * scale.astype(np.float16).astype(np.float32)).reshape(rows, cols)


def synth_tensors(c: SynthConfig, vocab: int):
    rng = np.random.default_rng(c.seed)
    kv = c.kv_heads * c.head_dim

    def norm() -> np.ndarray:
        return (1 + 0.1 * rng.standard_normal(c.dim)).astype(np.float32)

    yield "token_embd.weight", rng.standard_normal((vocab, c.dim), dtype=np.float32), "Q8_0"
    for i in range(c.layers):
        yield f"blk.{i}.attn_norm.weight", norm(), "F32"
        for name, shape in LINEAR_SHAPES.items():
            yield f"blk.{i}.{name}.weight", ternary(rng, *shape(c.dim, kv, c.ffn), c.scale), "TQ2_0"
        yield f"blk.{i}.ffn_norm.weight", norm(), "F32"
    yield "output_norm.weight", norm(), "F32"
    yield "output.weight", rng.standard_normal((vocab, c.dim), dtype=np.float32) / np.float32(np.sqrt(c.dim)), "Q8_0"


def write_synth(c: SynthConfig, path: Path) -> Path:
    from edgeq.llm.gguf_llama import LlamaParams
    from edgeq.llm.gguf_write import TokenizerMeta, write_llama_gguf

    if c.scale not in ("tensor", "block"):
        raise ValueError(f"scale must be 'tensor' or 'block', not {c.scale!r}")
    if c.dim % 256 or c.ffn % 256 or c.dim % c.heads or c.heads % c.kv_heads:
        raise ValueError(f"{c}: dim and ffn must be multiples of 256 (TQ2_0 blocks), heads divide dim, kv heads divide heads")
    tok = TokenizerMeta.from_gguf(TINY_GGUF)
    p = LlamaParams(vocab=len(tok.tokens), dim=c.dim, layers=c.layers, heads=c.heads, kv_heads=c.kv_heads, ffn=c.ffn,
                    context=c.context, rope_base=c.rope_base, rope_dims=c.head_dim, norm_eps=c.norm_eps)
    desc = {"synthetic": "random absmean-ternary weights, BitNet b1.58 2B4T layer shapes", **asdict(c),
            "vocab": "tiny-llm gpt2 BPE (1024)"}
    return write_llama_gguf(path, p, tok, synth_tensors(c, p.vocab), "edgeq-synth-bitnet-2b4t-shape", desc)


def synth_gguf(c: SynthConfig = SynthConfig()) -> Path:
    """The cached synthetic GGUF for these parameters, written once."""
    path = CACHE / f"{c.key()}.gguf"
    return path if path.is_file() else write_synth(c, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=SynthConfig.layers)
    ap.add_argument("--context", type=int, default=SynthConfig.context)
    ap.add_argument("--scale", choices=("tensor", "block"), default=SynthConfig.scale)
    ap.add_argument("--seed", type=int, default=SynthConfig.seed)
    ap.add_argument("-o", "--out", type=Path, help="write here instead of the cache")
    a = ap.parse_args(argv)
    c = SynthConfig(layers=a.layers, context=a.context, scale=a.scale, seed=a.seed)
    path = write_synth(c, a.out) if a.out else synth_gguf(c)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
