"""Kernel-level cases shared by tests/test_kernels.py (optimised build in-process, sanitised build in a
subprocess with the ASan runtime preloaded): every format x tier x batch x scale kind against the
reference tier and the numpy mirror (edgeq.formats decodes the very same code bytes)."""

from __future__ import annotations

import ctypes as C
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.formats import FORMATS, PackedTensor
from edgeq.formats import ids as F

FMT_INDEX = {"t2": 0, "t158": 1, "b1": 2, "q4": 3, "i8": 4}
ACC_ROW, ACC_BLOCK = 0, 1
TIERS = {"ref": 0, "avx2": 1, "avxvnni": 2}  # a tier this CPU lacks returns no kernel name


@dataclass(frozen=True)
class Case:
    fmt: str
    acc: int
    block: int
    rows: int
    cols: int
    n: int
    r0: int
    r1: int
    zeros: bool = False
    xnor: bool = False

    def __str__(self) -> str:
        kind = "xnor" if self.xnor else ("row" if self.acc == ACC_ROW else "block")
        z = "+zp" if self.zeros else ""
        return f"{self.fmt}{z}/{kind} b{self.block} {self.rows}x{self.cols} n={self.n} rows[{self.r0}:{self.r1})"


def cases(seed: int = 0, quick: bool = False) -> Iterator[Case]:
    """Formats x scale kinds x batch sizes (1..64 sampled) on shapes with odd K (not a block multiple)."""
    rng = np.random.default_rng(seed)
    batches = [1, 2, 7, 64] if quick else [1, 2, 3, 8, 13, 31, 64]
    kinds = [("t2", ACC_ROW, 256, False), ("t2", ACC_BLOCK, 256, False), ("t158", ACC_ROW, 256, False),
             ("t158", ACC_BLOCK, 256, False), ("b1", ACC_ROW, 64, False), ("i8", ACC_ROW, 16, False),
             ("i8", ACC_BLOCK, 32, False)]
    kinds += [("q4", ACC_BLOCK, g, z) for g in (32, 64, 128) for z in (False, True)]
    for fmt, acc, block, zeros in kinds:
        for n in batches:
            rows = int(rng.choice([1, 5, 8, 19, 40]))
            cols = int(rng.choice([1, 33, 100, 255, 257, 300, 777]))
            r0 = 1 if rows > 2 else 0
            yield Case(fmt, acc, block, rows, cols, n, r0, rows)
    for n in batches:
        yield Case("b1", ACC_ROW, 64, int(rng.choice([3, 9, 17])), int(rng.choice([5, 64, 130, 1000])), n, 0, 0,
                   xnor=True)


def random_weights(case: Case, rng: np.random.Generator) -> PackedTensor:
    """Random code bytes (every bit pattern, incl. T2 code 3 and T158 bytes >= 243) wrapped as a PackedTensor."""
    fmt = FORMATS[case.fmt]
    nb = -(-case.cols // case.block)
    row_bytes = nb * fmt.code_bytes(case.block)
    codes = rng.integers(0, 256, (case.rows, row_bytes), dtype=np.uint8)
    if case.acc == ACC_ROW:
        scales = np.ones(case.rows, np.float32)
        kind = F.SCALE_ROW
    else:
        scales = rng.normal(0, 0.05, (case.rows, nb)).astype(np.float16)
        scales.flat[:: 7] = np.float16(6.0e-8)  # subnormal halves convert exactly too
        kind = F.SCALE_BLOCK
    zeros = rng.integers(0, 16, (case.rows, nb), dtype=np.uint8) if case.zeros else None
    return PackedTensor(fmt.id, case.fmt, case.rows, case.cols, case.block, kind, codes, scales, zeros)


def expected(p: PackedTensor, x: np.ndarray) -> np.ndarray:
    """numpy mirror of docs/numerics.md: int32 row sums (wrapping) or block-ordered fp32 sums, [n, rows]."""
    w = p.int_values().astype(np.int64)
    if p.scale_kind == F.SCALE_ROW:
        return (x.astype(np.int64) @ w.T).astype(np.int32)
    nb = p.n_blocks
    isum = np.einsum("nbk,rbk->nrb", x.reshape(len(x), nb, p.block).astype(np.int64),
                     w.reshape(p.rows, nb, p.block)).astype(np.int32)
    d = p.scales.astype(np.float32)
    acc = np.zeros((len(x), p.rows), np.float32)
    for b in range(nb):
        acc = acc + d[None, :, b] * isum[:, :, b].astype(np.float32)
    return acc


def expected_xnor(p: PackedTensor, xbits: np.ndarray, cols: int) -> np.ndarray:
    from edgeq.formats.b1 import unpack_binary_activations

    a = unpack_binary_activations(xbits, cols).astype(np.int64)
    return (a @ p.int_values()[:, :cols].astype(np.int64).T).astype(np.int32)


def load(lib_path: str | Path) -> C.CDLL:
    lib = C.CDLL(str(lib_path))
    lib.eqt_dot.restype = lib.eqt_xnor.restype = C.c_char_p
    lib.eqt_dot.argtypes = [C.c_int] * 6 + [C.c_size_t] + [C.c_void_p] * 4 + [C.c_int] * 3 + [C.c_void_p]
    lib.eqt_xnor.argtypes = [C.c_int] * 3 + [C.c_size_t, C.c_void_p, C.c_void_p] + [C.c_int] * 3 + [C.c_void_p]
    return lib


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


@dataclass
class Inputs:
    """The buffers of one kernel call and the numpy expectation (rows outside [r0, r1) stay -7)."""

    p: PackedTensor
    x: np.ndarray  # int8 [n, padded_cols], or packed B1 bits for XNOR
    scales: np.ndarray
    acc: np.ndarray  # initial accumulator buffer [n, rows]
    want: np.ndarray


def case_inputs(case: Case, seed: int) -> Inputs:
    rng = np.random.default_rng(seed)
    p = random_weights(case, rng)
    acc_dtype = np.int32 if case.acc == ACC_ROW or case.xnor else np.float32
    acc = np.full((case.n, case.rows), -7, acc_dtype)
    if case.xnor:
        from edgeq.formats.b1 import pack_binary_activations

        xbits = np.ascontiguousarray(pack_binary_activations(rng.normal(size=(case.n, case.cols))))
        return Inputs(p, xbits, np.ascontiguousarray(p.scales), acc, expected_xnor(p, xbits, case.cols))
    x = np.zeros((case.n, p.padded_cols), np.int8)
    x[:, : case.cols] = rng.integers(-128, 128, (case.n, case.cols))
    x[:, : min(case.cols, 40)] = rng.choice([-128, 127], (case.n, min(case.cols, 40)))  # saturation edges
    want = expected(p, x)
    want[:, : case.r0] = -7  # rows outside [r0, r1) must stay untouched
    return Inputs(p, x, np.ascontiguousarray(p.scales), acc, want)


def run_case(lib: C.CDLL, tier: str, case: Case, seed: int) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(kernel name or None if the tier lacks it, got [n, rows], expected [n, rows]) over rows [r0, r1)."""
    d = case_inputs(case, seed)
    p, acc = d.p, d.acc
    if case.xnor:
        name = lib.eqt_xnor(TIERS[tier], case.rows, case.cols, p.codes.shape[1], _ptr(p.codes), _ptr(d.x), case.n,
                            0, case.rows, _ptr(acc))
    else:
        name = lib.eqt_dot(TIERS[tier], FMT_INDEX[case.fmt], case.acc, case.block, case.rows, case.cols,
                           p.codes.shape[1], _ptr(p.codes), _ptr(d.scales), _ptr(p.zeros), _ptr(d.x), case.n, case.r0,
                           case.r1, _ptr(acc))
    return (name.decode() if name else None), acc, d.want


def check_all(lib_path: str | Path, quick: bool = False) -> int:
    """Runs every case on every tier; raises AssertionError on the first mismatch; returns cases run."""
    lib = load(lib_path)
    count = 0
    for k, case in enumerate(cases(quick=quick)):
        for tier in TIERS:
            name, got, want = run_case(lib, tier, case, seed=k)
            if name is None:
                assert tier != "ref", f"ref tier lacks {case}"
                continue
            assert name.startswith(tier + "/"), name
            np.testing.assert_array_equal(got, want, err_msg=f"{tier} {name} {case}")
            count += 1
    return count


if __name__ == "__main__":  # used by the sanitizer test: python kernel_cases.py LIB
    print(check_all(sys.argv[1], quick=True))
