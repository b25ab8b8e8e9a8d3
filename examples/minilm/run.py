"""all-MiniLM-L6-v2 on edgeq: import the real safetensors weights, pack to Q4 and T2 (int8 absmax per-token
activations), run the host C runtime on the committed sentences and compare with the fp32 model.

    python examples/minilm/run.py [--seq-len 64] [--out DIR] [--formats q4,t2] [--target rpi5]

Prints, per format, the blob size and the mean/min cosine of the C runtime's embeddings with the fp32
model's (measured on this host). The blobs carry the sentences, so `edgeq deploy --target rpi5 DIR/minilm_q4.edgeq`
runs them on the (emulated) board and checks the same cosine there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edgeq.blob import write_blob
from edgeq.importers import bert
from edgeq.runtime import Session

HERE = Path(__file__).resolve().parent
GATE = {"q4": 0.98}  # mean cosine vs fp32 each format must reach (T2 by PTQ is reported, not gated)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--out", type=Path, default=HERE / "build")
    ap.add_argument("--formats", default="q4,t2")
    ap.add_argument("--target", default="", help="target id recorded in the blobs (e.g. rpi5)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sentences = (HERE / "sentences.txt").read_text().splitlines()
    m = bert.load_bert()
    fp32 = None
    print(f"all-MiniLM-L6-v2: {sum(v.size for v in m.weights.values()) / 1e6:.1f} M parameters, "
          f"{len(sentences)} sentences, sequence length {args.seq_len}")
    for fmt in args.formats.split(","):
        g, ids, mask, fp32 = bert.pack_sentence_encoder(m, fmt, sentences, args.seq_len, target=args.target,
                                                         min_mean_vs_fp32=GATE.get(fmt, 0.0), fp32=fp32)
        path = args.out / f"minilm_{fmt}.edgeq"
        write_blob(g, path)
        session = Session(path, max_batch=len(sentences))
        t0 = time.perf_counter()
        emb = session.run([ids, mask])[0]
        ms = (time.perf_counter() - t0) * 1e3
        c = cosines(emb, fp32)
        gate = f" (gate {GATE[fmt]}: {'pass' if c.mean() >= GATE[fmt] else 'FAIL'})" if fmt in GATE else ""
        print(f"{fmt:5s} {path.stat().st_size / 1e6:6.2f} MB  cosine vs fp32 mean {c.mean():.4f} min {c.min():.4f}"
              f"{gate}  host C runtime {ms:.0f} ms for {len(sentences)} sentences (measured, {session.kernel_tier})")


if __name__ == "__main__":
    main()
