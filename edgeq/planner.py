"""Mixed-precision planner: per-layer weight formats that fit a budget with the least accuracy loss.

1. Sensitivity: the model is packed with every layer int8 (the baseline) and then once per
   (layer, format) with only that layer changed; each is run by the reference executor on the
   calibration inputs and scored by the mean KL divergence of its output distribution from the
   float model's (no labels needed, so the held-out test set stays held out). The loss of a layer
   in a format is its KL increase over the baseline.
2. Costs per (layer, format) are exact: the bytes that layer's constants take in the blob (weights,
   bias, requantization parameters, each 64-byte aligned) and its modelled latency on the target
   (edgeq.targets.latency, roofline). Blob size and latency are sums over layers plus a fixed part.
3. Choice: minimise the summed loss subject to size <= min(budget, the target's flash for the blob)
   and latency <= the limit: an integer program (scipy.optimize.milp, one binary per layer and
   format) or, without scipy, an exhaustive search over all combinations (small models).
4. Verdict: the chosen plan and every uniform format are packed and run on the labelled test set
   (accuracy measured by the reference executor, which the C runtime matches bit for bit).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.blob.writer import serialize  # the exact bytes of a blob, without writing it
from edgeq.errors import EdgeqError
from edgeq.graph import Graph
from edgeq.importers.float_graph import FloatGraph, run_float
from edgeq.packer import WEIGHT_KINDS, Recipe, pack
from edgeq.targets import latency
from edgeq.targets.registry import Target

PLAN_FORMATS = ("t158", "t2", "q4", "i8")
EXHAUSTIVE_LIMIT = 1_000_000  # combinations the scipy-less fallback will enumerate


def _align(n: int) -> int:
    return -(-n // L.ALIGN) * L.ALIGN


def _probs(out: np.ndarray, is_softmax: bool) -> np.ndarray:
    out = out.reshape(len(out), -1).astype(np.float64)
    if is_softmax:
        return np.clip(out, 1e-12, 1.0)
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Mean KL(p || q) over samples (p the float model's distribution)."""
    q = np.clip(q, 1e-12, 1.0)
    return float(np.mean(np.sum(p * (np.log(np.clip(p, 1e-12, 1.0)) - np.log(q)), axis=1)))


def layer_costs(graph: Graph, target: Target | None) -> tuple[list[int], list[float], float]:
    """Per weight op (in order): blob bytes of its constants and modelled seconds; plus the blob's
    constant bytes outside weight ops and the other ops' modelled seconds."""
    weight_ops = [op for op in graph.ops if op.op in latency.WEIGHT_OPS]
    sizes = []
    for op in weight_ops:
        consts = [graph.tensors[i] for i in op.inputs if i >= 0 and graph.tensors[i].is_const]
        sizes.append(sum(_align(t.packed.nbytes if t.packed is not None else t.array.nbytes) for t in consts))
    seconds, other = [0.0] * len(weight_ops), 0.0
    if target is not None:
        est = latency.predict_graph(target, graph)
        seconds, other = [lt.time_s for lt in est.layers], est.other_s
    return sizes, seconds, other


@dataclass
class Candidate:
    """A packed choice (a plan or a uniform format) with its measured and modelled figures."""

    label: str
    layers: dict[str, str]
    blob_bytes: int
    latency_ms: float | None
    accuracy: float | None
    kl: float
    fits: bool = True
    why_not: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"label": self.label, "layers": self.layers, "blob_bytes": self.blob_bytes,
                "latency_ms": self.latency_ms, "latency_source": "modelled", "accuracy": self.accuracy,
                "accuracy_source": "measured (reference executor on the test set)", "kl": self.kl,
                "fits": self.fits, "why_not": self.why_not}


class Planner:
    def __init__(self, fg: FloatGraph, calib: np.ndarray, target: Target | None, *, group: int = 32,
                 x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
                 formats: tuple[str, ...] = PLAN_FORMATS, progress=None):
        self.fg, self.calib, self.target, self.group = fg, calib, target, group
        self.x_test, self.y_test, self.formats = x_test, y_test, formats
        self.progress = progress or (lambda s: None)
        self.layers = [n.name for n in fg.nodes if n.kind in WEIGHT_KINDS]
        if not self.layers:
            raise EdgeqError("the model has no linear/conv layers to plan")
        self.is_softmax = fg.nodes[-1].kind == "softmax"
        self.float_probs = _probs(run_float(fg, calib), self.is_softmax)
        self.packed: dict[tuple, Graph] = {}

    def graph(self, layers: dict[str, str]) -> Graph:
        """The model packed with these layer formats (others int8); cached."""
        key = tuple((n, layers.get(n, "i8")) for n in self.layers)
        if key not in self.packed:
            self.packed[key] = pack(self.fg, self.calib, Recipe("i8", self.group, layer_formats=dict(key)),
                                    target=self.target.id if self.target else "")
        return self.packed[key]

    def kl(self, g: Graph) -> float:
        return kl_divergence(self.float_probs, _probs(reference.run(g, [self.calib])[0], self.is_softmax))

    def accuracy(self, g: Graph) -> float | None:
        if self.x_test is None or self.y_test is None:
            return None
        out = reference.run(g, [self.x_test])[0]
        return float(np.mean(out.reshape(len(out), -1).argmax(1) == self.y_test))

    def costs(self) -> dict:
        """bytes[layer][fmt], seconds[layer][fmt] and the fixed parts, from one uniform pack per format
        (a layer's constants and kernel depend on its own format only)."""
        size, secs = {n: {} for n in self.layers}, {n: {} for n in self.layers}
        fixed_bytes = other_s = 0
        for fmt in self.formats:
            g = self.graph({n: fmt for n in self.layers})
            sizes, seconds, other_s = layer_costs(g, self.target)
            fixed_bytes = len(serialize(g)) - sum(sizes)
            for k, name in enumerate(self.layers):
                size[name][fmt], secs[name][fmt] = sizes[k], seconds[k]
        return {"bytes": size, "seconds": secs, "fixed_bytes": fixed_bytes, "other_seconds": other_s}

    def smallest_bytes(self, costs: dict) -> int:
        return costs["fixed_bytes"] + sum(min(v.values()) for v in costs["bytes"].values())

    def sensitivity(self, costs: dict) -> dict:
        """costs plus loss[layer][fmt] (KL increase over all-int8) and accuracy[layer][fmt] (test set)."""
        base = self.graph({})
        base_kl = self.kl(base)
        loss, acc = {}, {}
        for name in self.layers:
            loss[name], acc[name] = {}, {}
            for fmt in self.formats:
                self.progress(f"sensitivity {name} -> {fmt}")
                g = base if fmt == "i8" else self.graph({name: fmt})
                loss[name][fmt] = max(0.0, self.kl(g) - base_kl) if fmt != "i8" else 0.0
                acc[name][fmt] = self.accuracy(g)
        return {**costs, "loss": loss, "accuracy": acc, "baseline_kl": base_kl}

    def solve(self, sens: dict, max_bytes: int | None, max_seconds: float | None) -> dict[str, str] | None:
        """Least summed loss within the caps; ties go to the smaller blob. None when nothing fits."""
        try:
            from scipy.optimize import milp  # noqa: F401
        except ImportError:
            return solve_exhaustive(self.layers, self.formats, sens, max_bytes, max_seconds)
        return solve_milp(self.layers, self.formats, sens, max_bytes, max_seconds)

    def candidate(self, label: str, layers: dict[str, str]) -> Candidate:
        g = self.graph(layers)
        full = {n: layers.get(n, "i8") for n in self.layers}
        lat = None
        if self.target is not None:
            lat = latency.predict_graph(self.target, g).total_s * 1e3
        return Candidate(label, full, len(serialize(g)), lat, self.accuracy(g), self.kl(g))


def _objective(layers, formats, sens) -> np.ndarray:
    loss = np.array([[sens["loss"][n][f] for f in formats] for n in layers])
    size = np.array([[sens["bytes"][n][f] for f in formats] for n in layers], np.float64)
    return loss + 1e-9 * size  # ties (equal loss) go to the smaller blob


def solve_milp(layers, formats, sens, max_bytes, max_seconds) -> dict[str, str] | None:
    """One binary per (layer, format); exactly one format per layer; size and latency rows as caps."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    nl, nf = len(layers), len(formats)
    c = _objective(layers, formats, sens).ravel()
    rows, lo, hi = [], [], []
    for i in range(nl):
        row = np.zeros(nl * nf)
        row[i * nf:(i + 1) * nf] = 1
        rows.append(row), lo.append(1), hi.append(1)
    if max_bytes is not None:
        rows.append(np.array([sens["bytes"][n][f] for n in layers for f in formats], np.float64))
        lo.append(-np.inf), hi.append(max_bytes - sens["fixed_bytes"])
    if max_seconds is not None:
        rows.append(np.array([sens["seconds"][n][f] for n in layers for f in formats]))
        lo.append(-np.inf), hi.append(max_seconds - sens["other_seconds"])
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones_like(c),
               bounds=Bounds(0, 1))
    if res.status != 0 or res.x is None:
        return None
    pick = np.round(res.x).reshape(nl, nf).argmax(axis=1)
    return {n: formats[j] for n, j in zip(layers, pick)}


def solve_exhaustive(layers, formats, sens, max_bytes, max_seconds) -> dict[str, str] | None:
    """Every combination (the exact fallback without scipy, and the check of the integer program)."""
    if len(formats) ** len(layers) > EXHAUSTIVE_LIMIT:
        raise EdgeqError(f"{len(layers)} layers x {len(formats)} formats is too many combinations to search "
                         "without scipy: install scipy (scipy.optimize.milp)")
    obj = _objective(layers, formats, sens)
    best, best_cost = None, np.inf
    for pick in itertools.product(range(len(formats)), repeat=len(layers)):
        size = sens["fixed_bytes"] + sum(sens["bytes"][n][formats[j]] for n, j in zip(layers, pick))
        secs = sens["other_seconds"] + sum(sens["seconds"][n][formats[j]] for n, j in zip(layers, pick))
        if max_bytes is not None and size > max_bytes:
            continue
        if max_seconds is not None and secs > max_seconds:
            continue
        cost = sum(obj[i, j] for i, j in enumerate(pick))
        if cost < best_cost:
            best, best_cost = pick, cost
    return None if best is None else {n: formats[j] for n, j in zip(layers, best)}
