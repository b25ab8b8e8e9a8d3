"""Per-shape kernel choice as data: the `rules` list of a board's [kernels] table.

Each rule names a weight format, optional bounds on the layer's shape (M = output rows, K = input
columns) and a kernel kind. The packer takes the first rule that matches each weighted op and writes
the choice into the blob as an op flag (blob.layout.OPF_LUT); the runtime honours it when its kernel
tier has that kernel and otherwise runs its usual one. Retuning is editing the board file and
re-packing: no runtime rebuild. docs/kernels-arm.md describes the kernels and how the rpi5 rules
were measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError

KINDS = ("dot", "lut")  # dot: the tier's SDOT / widening-multiply kernel; lut: lookup-table mat-vec
LUT_FORMATS = ("t2", "t158")  # formats that have a lookup-table kernel
BOUNDS = ("min_k", "max_k", "min_m", "max_m")
WEIGHTED_OPS = (L.OP_LINEAR, L.OP_CONV2D, L.OP_DWCONV2D, L.OP_LINEAR_DYN)


@dataclass(frozen=True)
class Rule:
    """Use `kernel` for `format` weights whose shape lies inside the bounds (inclusive; None: unbounded)."""

    format: str
    kernel: str
    min_k: int | None = None
    max_k: int | None = None
    min_m: int | None = None
    max_m: int | None = None

    def matches(self, fmt: str, m: int, k: int) -> bool:
        return (fmt == self.format and (self.min_k is None or k >= self.min_k) and
                (self.max_k is None or k <= self.max_k) and (self.min_m is None or m >= self.min_m) and
                (self.max_m is None or m <= self.max_m))


def parse_rules(path: Path | str, rules: list[Any]) -> list[Rule]:
    """The validated rules of a [kernels] table; one EdgeqError naming the file, rule and key otherwise."""
    parsed = []
    for i, rule in enumerate(rules):
        where = f"{path}: [kernels] rules[{i}]"
        if not isinstance(rule, dict):
            raise EdgeqError(f"{where}: expected a table like {{ format = \"t2\", kernel = \"lut\" }}")
        unknown = sorted(set(rule) - {"format", "kernel", *BOUNDS})
        if unknown:
            raise EdgeqError(f"{where}.{unknown[0]}: unknown key (allowed: format, kernel, {', '.join(BOUNDS)})")
        for key, choices in (("format", LUT_FORMATS), ("kernel", KINDS)):
            if key not in rule:
                raise EdgeqError(f"{where}.{key}: missing (one of {', '.join(choices)})")
            if rule[key] not in choices:
                raise EdgeqError(f"{where}.{key}: {rule[key]!r} is not one of {', '.join(choices)}")
        for key in BOUNDS:
            value = rule.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise EdgeqError(f"{where}.{key}: expected a positive integer, got {value!r}")
        for lo, hi in (("min_k", "max_k"), ("min_m", "max_m")):
            if rule.get(lo) is not None and rule.get(hi) is not None and rule[lo] > rule[hi]:
                raise EdgeqError(f"{where}: {lo} = {rule[lo]} is larger than {hi} = {rule[hi]}: matches nothing")
        parsed.append(Rule(**rule))
    return parsed


def choose(rules: list[Rule], fmt: str, m: int, k: int) -> str:
    """The kernel kind for an M x K layer of format `fmt`: the first matching rule's, else "dot"."""
    return next((r.kernel for r in rules if r.matches(fmt, m, k)), "dot")


def target_rules(target) -> list[Rule]:
    """The rules of a validated board (empty when it has none)."""
    return parse_rules(target.path, target.section("kernels").get("rules", []))


def apply(graph, rules: list[Rule]) -> dict[str, str]:
    """Sets each weighted op's kernel hint flag from the rules; returns {weight tensor name: kernel kind}."""
    chosen = {}
    for op in graph.ops:
        if op.op not in WEIGHTED_OPS:
            continue
        w = graph.tensors[op.inputs[1]]
        fmt = w.packed.name if w.packed is not None else ""
        m, k = (w.packed.rows, w.packed.cols) if w.packed is not None else (0, 0)
        kind = choose(rules, fmt, m, k)
        op.flags = (op.flags & ~L.OPF_LUT) | (L.OPF_LUT if kind == "lut" else 0)
        chosen[w.name] = kind
    return chosen
