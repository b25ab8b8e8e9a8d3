"""Trains the digits models (fp32, then QAT per format) and exports them as .pt2 programs.

Run once (about a minute on 2 cores); the results are committed in examples/digits/models/ so
tests and the demo never retrain. `python examples/digits/train.py`
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from models import MODELS, example_input

from edgeq.quant import qat

OUT = Path(__file__).parent / "models"
QAT_FORMATS = ["t2", "t158", "b1", "q4", "i8"]


def data(kind: str):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    if kind == "cnn":
        x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    return x_train, x_test, y_train, y_test


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export(model: nn.Module, kind: str, name: str) -> None:
    ep = torch.export.export(model.eval(), (example_input(kind),))
    torch.export.save(ep, str(OUT / f"{name}.pt2"))


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    OUT.mkdir(exist_ok=True)
    for kind in ("mlp", "cnn", "bnn"):
        x_train, x_test, y_train, y_test = data(kind)
        np.savez_compressed(OUT / f"{kind}_data.npz", x=x_train[:256], x_test=x_test, y_test=y_test)
        model = MODELS[kind]()
        if kind == "bnn":
            qat.prepare_qat(model, {"fc2": "b1"})  # binary weights in the hidden layer
            fit(model, x_train, y_train, epochs=60, lr=3e-3)
            print(f"{kind} (binary, QAT): test accuracy {accuracy(model, x_test, y_test):.4f}")
            qat.strip_qat(model)
            export(model, kind, f"{kind}_b1_qat")
            continue
        fit(model, x_train, y_train, epochs=60, lr=3e-3)
        print(f"{kind} fp32: test accuracy {accuracy(model, x_test, y_test):.4f}")
        export(model, kind, f"{kind}_fp32")
        if kind == "cnn":
            model.fuse_bn()
        base = {k: v.clone() for k, v in model.state_dict().items()}
        layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        for fmt in QAT_FORMATS:
            model.load_state_dict(base)
            # binary networks keep their first and last layers int8 (BNN practice; packed the same way)
            plan = {n: ("i8" if fmt == "b1" and n in (layers[0], layers[-1]) else fmt) for n in layers}
            qat.prepare_qat(model, plan, activations=True)
            fit(model, x_train, y_train, epochs=40, lr=2e-3)
            print(f"{kind} {fmt} QAT: test accuracy (fake-quant weights) {accuracy(model, x_test, y_test):.4f}")
            qat.strip_qat(model)
            export(model, kind, f"{kind}_{fmt}_qat")


if __name__ == "__main__":
    main()
