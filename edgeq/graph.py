"""The quantized graph: what a blob stores and what the reference executor and runtimes run.

Tensor indices are positions in `Graph.tensors`; op and format ids are those of edgeq_blob.h.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq.blob import layout as L
from edgeq.formats import ids as F

PLAIN_DTYPES = {
    F.FMT_F32: np.float32,
    F.FMT_F16: np.float16,
    F.FMT_I32: np.int32,
    F.FMT_I8: np.int8,
    F.FMT_U8: np.uint8,
}


@dataclass
class Tensor:
    """A constant (weights, bias, requant params, bundled test data) or an activation."""

    name: str
    format: int
    shape: tuple[int, ...]
    packed: Any = None  # edgeq.formats.PackedTensor for weight formats
    array: np.ndarray | None = None  # plain constants
    qscale: float = 0.0
    qzero: int = 0
    flags: int = 0
    test_index: int = -1

    @property
    def is_const(self) -> bool:
        return self.packed is not None or self.array is not None


@dataclass
class Op:
    op: int
    inputs: list[int]
    outputs: list[int]
    attrs: list[int] = field(default_factory=lambda: [0] * L.OP_MAX_ATTRS)
    flags: int = 0  # OPF_* kernel hints (edgeq/targets/kernel_rules.py)

    @property
    def name(self) -> str:
        return L.OP_NAMES.get(self.op, f"op{self.op}")


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    target: str = ""

    def add(self, tensor: Tensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def const(self, name: str, array: np.ndarray) -> int:
        """Adds a plain constant (F32/I32/I8/U8) tensor."""
        array = np.ascontiguousarray(array)
        fmt = {np.dtype(v): k for k, v in PLAIN_DTYPES.items()}[array.dtype]
        return self.add(Tensor(name, fmt, tuple(array.shape), array=array, flags=L.TENSOR_CONST))

    def activation(self, name: str, fmt: int, shape: tuple[int, ...], qscale: float = 0.0, qzero: int = 0) -> int:
        return self.add(Tensor(name, fmt, tuple(int(s) for s in shape), qscale=float(qscale), qzero=int(qzero)))

    def add_op(self, op: int, inputs: list[int], outputs: list[int], attrs: dict[int, int] | None = None) -> Op:
        values = [0] * L.OP_MAX_ATTRS
        for k, v in (attrs or {}).items():
            values[k] = int(v)
        node = Op(op, list(inputs), list(outputs), values)
        self.ops.append(node)
        return node

    def test_tensors(self, flag: int) -> list[int]:
        """Indices of bundled test tensors with `flag`, ordered by test_index."""
        found = [i for i, t in enumerate(self.tensors) if t.flags & flag]
        return sorted(found, key=lambda i: self.tensors[i].test_index)
