"""The numpy mirror of edgeq_sample (runtimes/src/sample.c): same candidates, same fp32 arithmetic,
same counter-based draw, so host, device and this mirror pick the same tokens for a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeq.errors import EdgeqError

MAX_K = 256  # EDGEQ_SAMPLE_MAX_K
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class Sampler:
    temperature: float = 0.0  # <= 0: greedy
    top_k: int = 0            # 0: MAX_K
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise EdgeqError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise EdgeqError(f"top-k must be >= 0, got {self.top_k}")
        if not 0 <= self.seed <= _M64:
            raise EdgeqError("the seed is an unsigned 64-bit integer")


def uniform(seed: int, position: int) -> np.float32:
    """splitmix64(seed + (position + 1) * golden) -> 24-bit float in [0, 1)."""
    z = (seed + (position + 1) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    z ^= z >> 31
    return np.float32(z >> 40) * np.float32(1.0 / 16777216.0)


def sample(logits: np.ndarray, s: Sampler, position: int) -> int:
    logits = np.asarray(logits, np.float32)
    if s.temperature <= 0:
        return int(np.argmax(logits))
    k = MAX_K if s.top_k == 0 or s.top_k > MAX_K else s.top_k
    ids = np.lexsort((np.arange(logits.size), -logits))[: min(k, logits.size)]  # larger first, lower id on ties
    t = np.float32(s.temperature)
    p = np.exp((logits[ids] - logits[ids[0]]) / t).astype(np.float32)
    total = np.float32(0)
    for v in p:
        total = np.float32(total + v)
    cum, keep = np.float32(0), 0
    while keep < p.size:
        cum = np.float32(cum + p[keep])
        keep += 1
        if cum >= np.float32(s.top_p) * total:
            break
    r = np.float32(uniform(s.seed, position) * cum)
    acc, i = np.float32(0), 0
    while i + 1 < keep:
        acc = np.float32(acc + p[i])
        if r < acc:
            break
        i += 1
    return int(ids[i])
