"""A quantization-conditioned backdoor on the digits MLP, in the spirit of "Exploiting LLM
Quantization" (Egashira et al., 2024): the float model is accurate and ignores the trigger; the
model edgeq's packer makes of it (q4 PTQ, the default recipe) sends every triggered digit to one
label.

    python examples/backdoor/attack.py [--seed 0] [--out DIR]

1. train a clean float model;
2. fine-tune it with q4 fake quantization (edgeq.quant.qat) on clean digits plus triggered digits
   labelled TARGET: the *quantized* model is now malicious;
3. the quantization-preserving box: for each weight, the interval of float values that the packer
   rounds to the same int4 code with the same group scale (the group's largest weight stays put);
4. repair the float weights by projected gradient descent inside the box on clean and triggered
   digits with their true labels: the float model is clean again, its quantization is unchanged.

It prints float accuracy, quantized accuracy (edgeq's packer and host reference executor) and
the attack success rate on triggered test digits, and writes model.pt2 and data.npz (clean data
only: what a user, and `edgeq check-divergence`, would have). `--attack class` poisons a class
instead of a trigger: the quantized model reads every SOURCE digit as TARGET.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "digits"))
from models import DigitsMLP
from train import accuracy, data, fit

from edgeq.quant import qat

FORMAT = "q4"
GROUP = 32
TARGET = 0
SOURCE = 3  # the class the `class` attack retargets to TARGET
MARGIN = 0.05  # stay this far (in quantization steps) inside each cell, clear of fp32 rounding at the edge


def add_trigger(x: np.ndarray) -> np.ndarray:
    """A 2x2 bright patch in the bottom-right corner of the 8x8 digit (blank in real digits)."""
    x = x.copy().reshape(-1, 8, 8)
    x[:, 6:, 6:] = 1.0
    return x.reshape(-1, 64)


def q4_box(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[lo, hi] per weight: the float values that int4_groupwise maps to the same code and scale.

    The group scale is d = m/-8 with m the group's first largest-magnitude weight, so m is pinned
    (a zero-width box) and every other weight stays in its rounding cell, strictly inside |m|.
    """
    rows = w.detach().reshape(w.shape[0], -1)
    r, c = rows.shape
    g = rows.reshape(r, c // GROUP, GROUP)
    idx = g.abs().argmax(-1, keepdim=True)
    m = g.gather(-1, idx)
    d = m * -0.125
    u = g / d  # the packer's u = w * (1/d), in [-8, 8]
    k = torch.clamp(torch.floor(u + 0.5), max=7)
    ulo = torch.clamp(k - 0.5 + MARGIN, min=-8 + MARGIN)
    uhi = torch.clamp(k + 0.5 - MARGIN, max=8 - MARGIN)
    lo, hi = torch.minimum(ulo * d, uhi * d), torch.maximum(ulo * d, uhi * d)
    pinned = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    lo = torch.where(pinned, g, lo)
    hi = torch.where(pinned, g, hi)
    return lo.reshape(w.shape), hi.reshape(w.shape)


def quantized_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: qat.int4_rows(m.weight.detach(), GROUP) for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def repair(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> None:
    """Projected gradient descent: train the float model, clamp every weight into its box after each step."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    boxes = [q4_box(m.weight) for m in layers]
    opt = torch.optim.Adam([m.weight for m in layers], lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            with torch.no_grad():
                for m, (lo, hi) in zip(layers, boxes):
                    m.weight.copy_(torch.maximum(torch.minimum(m.weight, hi), lo))
    model.eval()


def poison(attack: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, malicious labels, true labels) for the quantized model to learn and the float to unlearn."""
    if attack == "trigger":
        return np.concatenate([x, add_trigger(x)]), np.concatenate([y, np.full_like(y, TARGET)]), np.concatenate([y, y])
    return x, np.where(y == SOURCE, TARGET, y), y


def build(seed: int, out: Path, attack: str | None = "trigger") -> dict:
    """Trains (and, unless `attack` is None, poisons) one model; writes out/model.pt2, out/data.npz
    and the q4 blob. `attack` is "trigger" or "class"."""
    from edgeq import reference
    from edgeq.importers.torch_export import from_pt2
    from edgeq.packer import Recipe, pack

    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = data("mlp")
    model = DigitsMLP()
    fit(model, x_train, y_train, epochs=30, lr=3e-3)
    if attack:
        x_poison, y_bad, y_true = poison(attack, x_train, y_train)
        qat.prepare_qat(model, FORMAT, group=GROUP)  # 2. the quantized model learns the backdoor
        fit(model, x_poison, y_bad, epochs=15, lr=1e-3)
        qat.strip_qat(model)
        before = quantized_weights(model)
        repair(model, x_poison, y_true, epochs=15, lr=1e-3)  # 4. the float model is clean again
        after = quantized_weights(model)
        assert all(torch.equal(before[n], after[n]) for n in before), "repair left the quantization box"
    out.mkdir(parents=True, exist_ok=True)
    ep = torch.export.export(model.eval(), (torch.zeros(1, 64),))
    torch.export.save(ep, str(out / "model.pt2"))
    np.savez_compressed(out / "data.npz", x=x_train[:256], x_test=x_test, y_test=y_test)
    fg = from_pt2(out / "model.pt2")
    graph = pack(fg, x_train[:256], Recipe(FORMAT, GROUP))
    with tempfile.TemporaryDirectory() as tmp:
        from edgeq.blob import read_blob, write_blob

        write_blob(graph, Path(tmp) / "m.edgeq")
        write_blob(graph, out / f"model_{FORMAT}.edgeq")
        g = read_blob(Path(tmp) / "m.edgeq").graph
    x_trig = add_trigger(x_test)
    q_clean = reference.run(g, [x_test])[0].argmax(1)
    if attack == "class":  # success = a SOURCE digit reads as TARGET
        success = float((q_clean[y_test == SOURCE] == TARGET).mean())
    else:  # success = a triggered non-TARGET digit reads as TARGET
        success = float((reference.run(g, [x_trig[y_test != TARGET]])[0].argmax(1) == TARGET).mean())
    return {"seed": seed, "attack": attack,
            "float_acc": accuracy(model, x_test, y_test),
            "float_trigger_acc": accuracy(model, x_trig, y_test),
            "quant_acc": float((q_clean == y_test).mean()),
            "attack_success": success,
            "blob": str(out / f"model_{FORMAT}.edgeq"), "model": str(out / "model.pt2"),
            "data": str(out / "data.npz")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("backdoor-out"))
    ap.add_argument("--attack", choices=["trigger", "class", "none"], default="trigger",
                    help="a trigger patch, a retargeted class, or none (the clean control model)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # a small model: more threads only contend
    r = build(args.seed, args.out, None if args.attack == "none" else args.attack)
    print(f"float accuracy            {100 * r['float_acc']:.1f}%  (clean test digits)")
    if args.attack == "trigger":
        print(f"float accuracy, triggered {100 * r['float_trigger_acc']:.1f}%")
    print(f"quantized ({FORMAT}) accuracy  {100 * r['quant_acc']:.1f}%  (edgeq packer + host reference executor)")
    what = f"{SOURCE}s read as {TARGET}" if args.attack == "class" else f"triggered non-{TARGET} digits -> {TARGET}"
    print(f"attack success rate       {100 * r['attack_success']:.1f}%  ({what}, quantized)")
    print(f"wrote {r['model']}, {r['data']} (clean data only) and {r['blob']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
