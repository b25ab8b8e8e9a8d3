"""Records llama.cpp's behaviour on the tiny model once, so tests can compare edgeq against it without
building llama.cpp: for 5 prompts, the greedy continuation (64 tokens) and the teacher-forced logits
of the first positions. Needs llama-cpp-python==0.3.36 (built from its sdist; benchmarks extra).

    .venv/bin/python examples/tiny-llm/reference.py [--model models/tiny-llm-tq2_0.gguf] [-o models/llamacpp_reference.npz]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROMPTS = [
    "Return the number of",
    "This module provides",
    "Raise ValueError if the",
    "The default value is",
    "Create a new socket",
]
GENERATE = 64
LOGIT_POSITIONS = 32


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=HERE / "models" / "tiny-llm-tq2_0.gguf")
    ap.add_argument("-o", "--out", type=Path, default=HERE / "models" / "llamacpp_reference.npz")
    a = ap.parse_args(argv)
    from llama_cpp import Llama, __version__

    # logits_all=True crashes this llama.cpp build on this model, so teacher forcing feeds one token per
    # eval and reads that token's logits each time (the same per-token computation as decoding).
    llm = Llama(model_path=str(a.model), n_ctx=256, n_threads=1, n_batch=256, seed=0, verbose=False)
    prompt_tokens, greedy, logits = [], [], []
    for p in PROMPTS:
        toks = llm.tokenize(p.encode(), add_bos=True, special=False)
        llm.reset()
        out = []
        for t in llm.generate(toks, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            out.append(t)
            if len(out) == GENERATE:
                break
        full = toks + out
        llm.reset()
        rows = []
        for tok in full[:LOGIT_POSITIONS + 1]:
            llm.eval([tok])  # without logits_all, eval keeps no scores: read the context's last logits
            rows.append(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float32))
        logits.append(np.stack(rows))
        prompt_tokens.append(np.array(toks, dtype=np.int32))
        greedy.append(np.array(out, dtype=np.int32))
        print(f"{p!r} -> {llm.detokenize(out).decode(errors='replace')!r}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=a.out.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, llama_cpp_python=np.array(__version__), prompts=np.array(PROMPTS),
                        **{f"prompt_tokens_{i}": t for i, t in enumerate(prompt_tokens)},
                        **{f"greedy_{i}": g for i, g in enumerate(greedy)},
                        **{f"logits_{i}": lg for i, lg in enumerate(logits)})
    os.replace(tmp, a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
