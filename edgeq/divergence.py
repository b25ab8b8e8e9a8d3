"""Divergence guard: does the quantized blob behave like the float model it came from?

A quantization-conditioned backdoor (Egashira et al., "Exploiting LLM Quantization", 2024) is a
float model that behaves and a quantized model that does not. The guard runs both on the user's
own clean data and measures, against noise levels derived from the data and the format's
quantization step (never from a known attack):

- per weight layer, `noise ratio`: the output error that the layer's weight rounding causes on
  the float model's own activations, divided by what rounding to that step causes when the
  rounding errors are noise (uniform in +-step/2, variance step^2/12). Honest rounding gives ~1.
  Even if every weight sat at the edge of its cell (|error| = step/2) the ratio would be 3, so a
  ratio above 3 means the rounding errors are *aligned with the data*: the float weights were
  placed on purpose. Only for formats with a uniform grid (i8, q4); ternary and binary codes clip,
  so their error is not rounding noise and the ratio is reported, not judged.
- per input, `divergence`: |logits_q - logits_f| / median |logits_f|, with a robust z-score
  against the median and MAD of all inputs. A *quantization-induced error* is an input whose top-1
  changed (and, with labels, whose float answer was right); it is flagged when its divergence is
  beyond the noise (robust z > INPUT_Z).
- per class: the count of quantization-induced errors in the class against the rate of all other
  classes (binomial upper tail, Bonferroni over classes): quantization noise hits classes alike,
  a backdoor that retargets a class does not.

The cumulative error of each layer's output (host reference executor vs float activation) and,
optionally, the C runtime's agreement with the reference executor are reported too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from edgeq import reference
from edgeq.formats import ids as F
from edgeq.graph import Graph
from edgeq.importers.float_graph import FloatGraph, _windows, run_float

GRID_FORMATS = ("i8", "q4")  # uniform rounding grid: |rounding error| <= step/2
NOISE_RATIO_MAX = 3.0  # all errors at +-step/2 gives (step^2/4)/(step^2/12) = 3
INPUT_Z = 3.5  # robust z of a flagged input's divergence (MAD-based, ~1e-4 one-sided for a normal)
CLASS_ALPHA = 1e-3  # family-wise false-alarm level of the per-class test
CLASS_MIN = 3  # fewer quantization-induced errors than this in a class is never a pattern
EDGE = 0.4  # a weight "at the edge" of its cell: |error| > 0.4 step (20% of honest rounding)
WEAK_REFERENCE = 0.05  # float accuracy this far below the quantized model's earns a note
RUNTIME_ATOL = 1e-5  # as the deploy check: only softmax's expf may differ by an ulp


@dataclass
class Layer:
    name: str
    format: str
    rel_error: float  # cumulative: |a_q - a_f| / |a_f| of the layer's output, reference executor
    noise_ratio: float | None  # local weight-rounding output energy / (step^2/12 noise); None: no grid
    edge_fraction: float | None  # share of weights with |error| > EDGE*step (0.2 for honest rounding)
    flagged: bool = False


@dataclass
class ClassStat:
    label: int
    n: int
    induced: int  # quantization-induced errors in the class
    rate: float
    expected_rate: float  # the other classes' rate (the noise level)
    p_value: float
    flagged: bool = False


@dataclass
class Flagged:
    index: int
    label: int | None
    float_pred: int
    quant_pred: int
    divergence: float
    robust_z: float


@dataclass
class Result:
    inputs: int
    labelled: bool
    float_accuracy: float | None
    quant_accuracy: float | None
    top1_agreement: float
    induced_errors: int
    divergence_median: float
    divergence_mad: float
    layers: list[Layer]
    classes: list[ClassStat]
    flagged_inputs: list[Flagged]
    runtime_max_abs_diff: float | None = None
    thresholds: dict = field(default_factory=lambda: {
        "noise_ratio_max": NOISE_RATIO_MAX, "input_robust_z": INPUT_Z, "class_alpha": CLASS_ALPHA,
        "class_min_errors": CLASS_MIN, "runtime_atol": RUNTIME_ATOL})

    @property
    def reasons(self) -> list[str]:
        out = [f"layer {lay.name}: weight rounding error {lay.noise_ratio:.1f}x the noise of its step "
               f"(> {NOISE_RATIO_MAX:g}: aligned with the data)" for lay in self.layers if lay.flagged]
        out += [f"class {c.label}: {c.induced}/{c.n} quantization-induced errors ({100 * c.rate:.1f}% vs "
                f"{100 * c.expected_rate:.1f}% elsewhere, p={c.p_value:.1e})" for c in self.classes if c.flagged]
        if self.flagged_inputs:
            out.append(f"{len(self.flagged_inputs)} input(s) changed answer with divergence beyond the noise "
                       f"(robust z > {INPUT_Z:g})")
        if self.runtime_max_abs_diff is not None and self.runtime_max_abs_diff > RUNTIME_ATOL:
            out.append(f"C runtime differs from the reference executor by {self.runtime_max_abs_diff:.3g}")
        return out

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)

    @property
    def notes(self) -> list[str]:
        """Caveats that do not flag: a float model much worse than its blob is a weak reference."""
        if self.labelled and self.float_accuracy < self.quant_accuracy - WEAK_REFERENCE:
            gap = 100 * (self.quant_accuracy - self.float_accuracy)
            return [(f"the float model is {gap:.0f} points less accurate than the quantized one (latent weights of a "
                    "QAT model?): only its correct answers are checked")]
        return []

    def to_dict(self) -> dict:
        return {**asdict(self), "flagged": self.flagged, "reasons": self.reasons, "notes": self.notes}


def _binom_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    p = min(max(p, 1e-12), 1 - 1e-12)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
             + (n - i) * math.log1p(-p) for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _patches(node, x: np.ndarray) -> list[tuple[np.ndarray, slice]]:
    """(inputs as rows [P, K], weight rows they meet) for one weight layer, from its float input."""
    if node.kind == "linear":
        return [(x.reshape(-1, x.shape[-1]), slice(None))]
    w = node.params["weight"]
    a = node.attrs
    win = _windows(x, w.shape[1], w.shape[2], a["stride"][0], a["stride"][1], a["pads"], 0.0)
    if node.kind == "conv2d":
        return [(win.reshape(-1, win.shape[3] * win.shape[4] * win.shape[5]), slice(None))]
    return [(win[..., c].reshape(-1, win.shape[3] * win.shape[4]), slice(c, c + 1)) for c in range(win.shape[5])]


def _step(packed, cols: int) -> np.ndarray:
    """The quantization step of every weight [rows, cols] (row scale or block scale)."""
    s = np.abs(packed.scales.astype(np.float64))
    if packed.scale_kind == F.SCALE_BLOCK:
        return np.repeat(s, packed.block, axis=1)[:, :cols]
    return np.broadcast_to(s.reshape(-1, 1), (packed.rows, cols))


def layer_stats(fg: FloatGraph, g: Graph, float_values: dict, quant_values: dict) -> list[Layer]:
    by_name = {t.name: i for i, t in enumerate(g.tensors)}
    layers = []
    for node in fg.nodes:
        if node.kind not in ("linear", "conv2d", "dwconv2d"):
            continue
        wt = g.tensors[by_name[node.name + ".weight"]]
        p = wt.packed
        w = node.params["weight"].reshape(node.params["weight"].shape[0], -1).astype(np.float64)
        err = p.dequantize()[:, : w.shape[1]].astype(np.float64) - w
        ratio = edge = None
        if p.name in GRID_FORMATS:
            step = _step(p, w.shape[1])
            measured = expected = 0.0
            for rows_x, rows in _patches(node, float_values[node.inputs[0]].astype(np.float64)):
                measured += float(((rows_x @ err[rows].T) ** 2).sum())
                expected += float(((rows_x ** 2) @ (step[rows] ** 2 / 12).T).sum())
            ratio = measured / expected if expected > 0 else 0.0
            moved = np.abs(err) > 1e-7 * np.maximum(step, 1e-30)  # the scale-defining weight sits exactly
            r = np.abs(err[moved]) / step[moved]
            edge = float((r > EDGE).mean()) if r.size else 0.0
        out = _output_value(fg, g, node, by_name)
        rel = float("nan")
        if out is not None:
            name, idx = out
            t = g.tensors[idx]
            q = quant_values[idx]
            q = q.astype(np.float32) if t.format == F.FMT_F32 else reference.dequantize(q, t.qscale, t.qzero)
            f = float_values[name]
            rel = float(np.linalg.norm(q.reshape(f.shape) - f) / max(np.linalg.norm(f), 1e-30))
        layers.append(Layer(node.name, p.name, rel, ratio, edge,
                            flagged=ratio is not None and ratio > NOISE_RATIO_MAX))
    return layers


def _output_value(fg: FloatGraph, g: Graph, node, by_name: dict) -> tuple[str, int] | None:
    """The float value and quantized tensor holding the layer's output (after a fused relu)."""
    users = fg.consumers(node.name)
    for name in ([users[0].name] if len(users) == 1 and users[0].kind == "relu" else []) + [node.name]:
        idx = by_name.get(name)
        if idx is not None and g.tensors[idx].format in (F.FMT_I8, F.FMT_F32):
            return name, idx
    return None


def check(fg: FloatGraph, g: Graph, x: np.ndarray, labels: np.ndarray | None = None,
          runtime_outputs: np.ndarray | None = None) -> Result:
    """Compares the float graph and the quantized graph on `x` (graph layout, batch first)."""
    fv = run_float(fg, x, keep_all=True)
    qv = reference.run(g, [x], keep_all=True)
    zf = fv[fg.output].reshape(len(x), -1).astype(np.float64)
    zq = qv[g.outputs[0]].reshape(len(x), -1).astype(np.float64)
    pf, pq = zf.argmax(1), zq.argmax(1)
    scale = max(float(np.median(np.linalg.norm(zf, axis=1))), 1e-30)
    div = np.linalg.norm(zq - zf, axis=1) / scale
    med = float(np.median(div))
    mad = float(1.4826 * np.median(np.abs(div - med)))
    z = (div - med) / max(mad, 1e-12 * max(med, 1e-30), 1e-30)
    truth = pf if labels is None else np.asarray(labels).reshape(-1)
    induced = (pq != pf) & (pf == truth)
    flagged = [Flagged(int(i), None if labels is None else int(truth[i]), int(pf[i]), int(pq[i]), float(div[i]),
                       float(z[i])) for i in np.flatnonzero(induced & (z > INPUT_Z))]
    classes = []
    present = np.unique(truth)
    for c in present:
        inside = truth == c
        n, k = int(inside.sum()), int(induced[inside].sum())
        rest_n, rest_k = len(x) - n, int(induced[~inside].sum())
        expected = (rest_k + 1) / (rest_n + 2)  # the noise level, from the other classes (Laplace)
        p = _binom_tail(k, n, expected)
        classes.append(ClassStat(int(c), n, k, k / n, expected, p,
                                 flagged=k >= CLASS_MIN and p < CLASS_ALPHA / len(present)))
    runtime_diff = None
    if runtime_outputs is not None:
        runtime_diff = float(np.abs(np.asarray(runtime_outputs, np.float64).reshape(zq.shape) - zq).max())
    return Result(
        inputs=len(x), labelled=labels is not None,
        float_accuracy=None if labels is None else float((pf == truth).mean()),
        quant_accuracy=None if labels is None else float((pq == truth).mean()),
        top1_agreement=float((pf == pq).mean()), induced_errors=int(induced.sum()),
        divergence_median=med, divergence_mad=mad,
        layers=layer_stats(fg, g, fv, qv), classes=classes, flagged_inputs=flagged,
        runtime_max_abs_diff=runtime_diff)
