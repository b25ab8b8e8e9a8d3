"""Short distillation QAT of all-MiniLM-L6-v2 to ternary (T2) linears, on text available offline.

Student = the same BERT with every linear's weight fake-quantized to T2 (edgeq.quant.qat, straight-through)
and every linear's input fake-quantized to int8 absmax per token (as LINEAR_DYN runs it); teacher = the fp32
model. Loss = 1 - cosine of the pooled, normalised embeddings + MSE of the last hidden states. Training text:
sentences from the docstrings of Python standard-library modules (never the committed evaluation sentences).
Afterwards the latent weights are packed by the same importer and evaluated on the C runtime.

    python examples/minilm/distill_ternary.py [--minutes 12] [--batch 16] [--seq-len 32]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeq.blob import write_blob
from edgeq.importers import bert
from edgeq.quant.qat import prepare_qat, strip_qat
from edgeq.runtime import Session

HERE = Path(__file__).resolve().parent
SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}  # side effects on import


class _AbsmaxSTE(torch.autograd.Function):
    """int8 absmax per token (edgeq.quant.activations.quantize_absmax_rows), identity gradient."""

    @staticmethod
    def forward(ctx, x):
        s = x.abs().amax(-1, keepdim=True).clamp(min=1e-5) / 127
        return torch.clamp(torch.round(x / s), -127, 127) * s

    @staticmethod
    def backward(ctx, g):
        return g


class Bert(nn.Module):
    """BertModel + mean pooling + L2 normalisation; parameter names are the safetensors names."""

    def __init__(self, m: bert.BertModel, quant_acts: bool) -> None:
        super().__init__()
        c = self.c = m.config
        self.quant_acts = quant_acts
        self.p = nn.ParameterDict()
        self.lin = nn.ModuleDict()
        self.ln = nn.ModuleDict()
        for name, w in m.weights.items():
            key = name.removesuffix(".weight").removesuffix(".bias")
            t = torch.from_numpy(w.copy())
            if "LayerNorm" in key:
                if key.replace(".", "_") not in self.ln:
                    self.ln[key.replace(".", "_")] = nn.LayerNorm(c.hidden, eps=c.eps)
                getattr(self.ln[key.replace(".", "_")], name.rsplit(".", 1)[1]).data = t
            elif key.startswith("encoder.") and w.ndim == 2:
                mod = nn.Linear(w.shape[1], w.shape[0])
                mod.weight.data, mod.bias.data = t, torch.from_numpy(m.weights[key + ".bias"].copy())
                self.lin[key.replace(".", "_")] = mod
            elif key.startswith("embeddings"):
                self.p[key.replace(".", "_")] = nn.Parameter(t, requires_grad=False)

    def linear(self, x, key):
        if self.quant_acts:
            x = _AbsmaxSTE.apply(x)
        return self.lin[key.replace(".", "_")](x)

    def forward(self, ids, mask):
        c, n, t = self.c, ids.shape[0], ids.shape[1]
        d = c.hidden // c.heads
        x = (self.p["embeddings_word_embeddings"][ids] + self.p["embeddings_token_type_embeddings"][0]
             + self.p["embeddings_position_embeddings"][:t])
        x = self.ln["embeddings_LayerNorm"](x)
        bias = (1.0 - mask[:, None, None, :].float()) * -1e30
        for i in range(c.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (self.linear(x, p + f"attention.self.{s}").view(n, t, c.heads, d).transpose(1, 2)
                       for s in ("query", "key", "value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5 + bias, -1) @ v
            a = a.transpose(1, 2).reshape(n, t, c.hidden)
            x = self.ln[(p + "attention.output.LayerNorm").replace(".", "_")](x + self.linear(a, p + "attention.output.dense"))
            h = torch.nn.functional.gelu(self.linear(x, p + "intermediate.dense"))
            x = self.ln[(p + "output.LayerNorm").replace(".", "_")](x + self.linear(h, p + "output.dense"))
        mf = mask[:, :, None].float()
        pooled = (x * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1), x


def stdlib_sentences(limit: int) -> list[str]:
    """Sentences from the docstrings of importable standard-library modules and their members."""
    out: list[str] = []
    for info in sorted(pkgutil.iter_modules(), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in SKIP or not getattr(info.module_finder, "path", "").endswith("python3.11"):
            continue
        try:
            mod = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001, S112 -- some stdlib modules need a GUI or a platform; skip them
            continue
        docs = [mod.__doc__ or ""] + [getattr(v, "__doc__", "") or "" for v in vars(mod).values() if callable(v)]
        for doc in docs:
            if not isinstance(doc, str):
                continue
            for s in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                if 30 <= len(s) <= 200 and s[0].isupper():
                    out.append(s)
        if len(out) >= limit:
            break
    return sorted(set(out))[:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    m = bert.load_bert()
    train = stdlib_sentences(6000)
    eval_sents = (HERE / "sentences.txt").read_text().splitlines()
    assert not set(train) & set(eval_sents)
    ids, mask = (torch.from_numpy(a).long() for a in bert.tokenize(m, train, args.seq_len))
    teacher = Bert(m, quant_acts=False).eval()
    student = prepare_qat(Bert(m, quant_acts=True), {f"lin.{k}": "t2" for k in Bert(m, False).lin})
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    print(f"{len(train)} training sentences from stdlib docstrings; {args.minutes} min budget")
    t0, step = time.time(), 0
    while time.time() - t0 < args.minutes * 60:
        idx = torch.randint(0, len(train), (args.batch,))
        with torch.no_grad():
            te, th = teacher(ids[idx], mask[idx])
        se, sh = student(ids[idx], mask[idx])
        loss = (1 - (se * te).sum(-1)).mean() + torch.nn.functional.mse_loss(sh, th)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 10 == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  mean cos {(se * te).sum(-1).mean().item():.4f}  "
                  f"{time.time() - t0:.0f} s", flush=True)
    strip_qat(student)
    overrides = {}
    for key, mod in student.lin.items():
        name = next(k for k in m.weights if k.replace(".", "_") == key + "_weight").removesuffix(".weight")
        overrides[name + ".weight"] = mod.weight.detach().numpy().astype(np.float32)
        overrides[name + ".bias"] = mod.bias.detach().numpy().astype(np.float32)
    out = HERE / "build"
    out.mkdir(exist_ok=True)
    np.savez(out / "minilm_t2_distilled.npz", **overrides)  # latent weights: re-pack without retraining
    fp32 = None
    for label, ov in (("T2 PTQ", None), ("T2 distilled", overrides)):
        g, e_ids, e_mask, fp32 = bert.pack_sentence_encoder(m, "t2", eval_sents, args.seq_len, overrides=ov, fp32=fp32)
        path = out / f"minilm_t2{'_qat' if ov else ''}.edgeq"
        write_blob(g, path)
        emb = Session(path, max_batch=len(eval_sents)).run([e_ids, e_mask])[0]
        c = (emb * fp32).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(fp32, axis=1))
        print(f"{label:13s} cosine vs fp32 on the committed sentences: mean {c.mean():.4f} min {c.min():.4f} "
              f"(host C runtime, measured; {step} steps)")


if __name__ == "__main__":
    main()
