"""A decoder blob in the host C runtime: teacher-forced logits, and generation with prompt / decode
timings (docs/llm.md). A .gguf path is packed first (cached by content, mode and pack version).

One token is one sample of the graph, so a prompt runs in chunks of `chunk` tokens (GEMM kernels)
and each generated token is a run of batch 1 (mat-vec kernels). Sampling is the runtime's
edgeq_sample, the same function the device runner calls.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.llm.gguf_llama import LlamaParams
from edgeq.llm.sampling import Sampler

PACK_VERSION = 2  # bump when edgeq.llm.pack changes what it writes
DEFAULT_CHUNK = 32


def pack_gguf(path: str | Path, mode: str = "edgeq", out: str | Path | None = None) -> Path:
    """GGUF -> decoder blob; without `out`, into the cache keyed by the file's bytes and the mode."""
    from edgeq.blob import write_blob
    from edgeq.build.builder import cache_root
    from edgeq.llm.gguf_llama import load_llama
    from edgeq.llm.pack import llama_graph

    path = Path(path)
    if out is None:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as e:
            raise EdgeqError(f"{path}: cannot read ({e.strerror})") from None
        out = cache_root() / "llm" / f"{path.stem}-{mode}-p{PACK_VERSION}-{h.hexdigest()[:16]}.edgeq"
        if out.is_file():
            return out
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_blob(llama_graph(load_llama(path), mode), out)
    return out


def is_gguf(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError as e:
        raise EdgeqError(f"{path}: cannot read ({e.strerror})") from None


@dataclass
class Generation:
    tokens: list[int]
    prompt_tokens: int
    prompt_seconds: float   # measured wall clock of the prompt's forward pass
    decode_seconds: float   # measured wall clock of the single-token steps
    decode_steps: int
    arena_bytes: int
    weight_bytes: int

    @property
    def prompt_tok_s(self) -> float:
        return self.prompt_tokens / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tok_s(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else 0.0


class Engine:
    def __init__(self, blob: str | Path, threads: int = 1, tier: str | None = None, chunk: int = DEFAULT_CHUNK):
        from edgeq.runtime import Session

        self.blob = Path(blob)
        self.session = Session(self.blob, threads=threads, tier=tier or "auto", max_batch=chunk)
        meta = self.session.metadata.get("llm")
        if not meta:
            raise EdgeqError(f"{self.blob}: not a decoder blob (pack a llama GGUF: edgeq generate MODEL.gguf)")
        pp = meta["params"]
        self.params = LlamaParams(vocab=pp["vocab"], dim=pp["dim"], layers=pp["layers"], heads=pp["heads"],
                                  kv_heads=pp["kv_heads"], ffn=pp["ffn"], context=pp["context"],
                                  rope_base=pp["rope_base"], rope_dims=pp["dim"] // pp["heads"], norm_eps=pp["norm_eps"])
        self.mode = meta["mode"]
        self.tokenizer_spec = SimpleNamespace(path=self.blob, tokenizer_model=meta["tokenizer"]["model"],
                                              **{k: v for k, v in meta["tokenizer"].items() if k != "model"})
        self.position = 0

    @classmethod
    def open(cls, path: str | Path, mode: str = "edgeq", threads: int = 1, tier: str | None = None,
             chunk: int = DEFAULT_CHUNK) -> Engine:
        """A GGUF is packed in `mode` (cached); a blob must have been packed in it ("edgeq": any)."""
        if is_gguf(path):
            return cls(pack_gguf(path, mode), threads, tier, chunk)
        eng = cls(path, threads, tier, chunk)
        if mode != "edgeq" and eng.mode != mode:
            raise EdgeqError(f"{path} was packed in '{eng.mode}' mode; pack the GGUF again for '{mode}'")
        return eng

    def tokenizer(self):
        from edgeq.llm.tokenizer import GGUFTokenizer

        return GGUFTokenizer(self.tokenizer_spec)

    def reset(self) -> None:
        self.position = 0

    def check_fits(self, n: int) -> None:
        if self.position + n > self.params.context:
            raise EdgeqError(f"{self.position + n} tokens exceed the model's context of {self.params.context} "
                             f"(prompt and generated tokens together)")

    def forward(self, tokens) -> np.ndarray:
        """Appends tokens to the KV cache; returns their logits [len(tokens), vocab]."""
        ids = np.asarray(list(tokens), np.int32)
        if ids.size == 0:
            return np.zeros((0, self.params.vocab), np.float32)
        self.check_fits(ids.size)
        if ids.min() < 0 or ids.max() >= self.params.vocab:
            raise EdgeqError(f"token id out of range 0..{self.params.vocab - 1}")
        pos = np.arange(self.position, self.position + ids.size, dtype=np.int32)
        (logits,) = self.session.run([ids[:, None], pos[:, None]])
        self.position += ids.size
        return logits

    def generate(self, prompt, n: int, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                 seed: int = 0) -> Generation:
        from edgeq.runtime import Sampler as CSampler

        prompt = list(prompt)
        if not prompt:
            raise EdgeqError("the prompt is empty")
        Sampler(temperature, top_k, top_p, seed)  # validates
        sampler = CSampler(temperature, top_k, top_p, 0, seed)
        self.reset()
        self.check_fits(len(prompt) + max(n - 1, 0))
        t0 = time.perf_counter()
        logits = self.forward(prompt)[-1]
        t1 = time.perf_counter()
        out: list[int] = []
        decode = 0.0
        for _ in range(n):
            out.append(self.session.sample(logits, sampler, self.position))
            if len(out) == n:
                break
            s = time.perf_counter()
            logits = self.forward(out[-1:])[-1]
            decode += time.perf_counter() - s
        return Generation(out, len(prompt), t1 - t0, decode, max(n - 1, 0), self.session.memory["arena_bytes"],
                          self.blob.stat().st_size)
