"""PackedTensor: one weight matrix in a bit format, as the blob stores it (docs/formats.md).

A packed tensor is three regions, each starting 64-byte aligned inside its payload:

    codes   uint8 [rows, row_bytes]      row_bytes = n_blocks * code_bytes(block)
    scales  SCALE_BLOCK: fp16 [rows, n_blocks]   SCALE_ROW: fp32 [rows]
    zeros   uint8 [rows, n_blocks]        (Q4 asymmetric only)

`payload()` lays them out exactly as the blob writer stores them; `from_payload()` reads them
back as numpy views over the caller's buffer (no copy), so an mmapped blob is used in place.

The arrays are always canonical (row-major). `layout` only says how the payload stores them:
LAYOUT_ROWS4 (T2, Q4) interleaves groups of 4 rows in 4-byte words so one SDOT by element dots 4
rows with the same activations; block scales and zero points become [groups, n_blocks, 4]. A
ROWS4 payload is converted back to canonical arrays when read (a copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from edgeq.errors import BlobError, EdgeqError
from edgeq.formats import ids

if TYPE_CHECKING:
    from edgeq.formats.base import WeightFormat

SCALE_NAMES = {ids.SCALE_NONE: "none", ids.SCALE_ROW: "row", ids.SCALE_BLOCK: "block"}
LAYOUT_NAMES = {ids.LAYOUT_ROW_MAJOR: "row-major", ids.LAYOUT_ROWS4: "rows4"}
ROWS4_FORMATS = (ids.FMT_T2, ids.FMT_Q4)  # the formats whose kernels read LAYOUT_ROWS4
_SCALE_DTYPES = {ids.SCALE_ROW: np.dtype("<f4"), ids.SCALE_BLOCK: np.dtype("<f2")}


def _align(n: int) -> int:
    return -(-n // ids.ALIGN) * ids.ALIGN


class Region(NamedTuple):
    """One region of a payload: its name, byte offset inside the payload, and size."""

    name: str
    offset: int
    size: int


class Payload(NamedTuple):
    """What the blob writer stores for a packed tensor: the bytes and the region offsets."""

    data: bytes
    scales_at: int
    zeros_at: int


class Layout(NamedTuple):
    """Sizes and offsets of a packed tensor's regions, derived from its shape alone."""

    n_blocks: int
    padded_cols: int
    row_bytes: int
    scales_at: int
    scales_shape: tuple[int, ...]
    zeros_at: int
    nbytes: int


def layout_problem(fmt: WeightFormat, rows: int, cols: int, block: int, scale_kind: int,
                   has_zeros: bool, weight_layout: int = ids.LAYOUT_ROW_MAJOR) -> str | None:
    """Why this combination cannot be a packed tensor of `fmt`, or None when it can."""
    if weight_layout not in LAYOUT_NAMES:
        return f"{fmt.name}: unknown layout id {weight_layout}"
    if weight_layout == ids.LAYOUT_ROWS4 and fmt.id not in ROWS4_FORMATS:
        return f"{fmt.name}: layout rows4 is only defined for t2 and q4"
    if rows <= 0 or cols <= 0:
        return f"{fmt.name}: shape [{rows}, {cols}] must be positive"
    if block not in fmt.blocks:
        return f"{fmt.name}: block {block} not supported (expected one of {', '.join(map(str, fmt.blocks))})"
    if scale_kind not in fmt.scale_kinds:
        allowed = ", ".join(SCALE_NAMES[k] for k in fmt.scale_kinds)
        return f"{fmt.name}: scale kind {SCALE_NAMES.get(scale_kind, scale_kind)} not supported (expected {allowed})"
    if fmt.block_problem(block, scale_kind):
        return fmt.block_problem(block, scale_kind)
    if has_zeros and not (fmt.zero_points and scale_kind == ids.SCALE_BLOCK):
        return f"{fmt.name}: zero points are only defined for Q4 with block scales"
    return None


def stored_rows(rows: int, weight_layout: int) -> int:
    """Rows the payload holds: ROWS4 pads the last group of 4 with zero rows."""
    group = ids.ROWS4_GROUP
    return -(-rows // group) * group if weight_layout == ids.LAYOUT_ROWS4 else rows


def layout(fmt: WeightFormat, rows: int, cols: int, block: int, scale_kind: int, has_zeros: bool,
           weight_layout: int = ids.LAYOUT_ROW_MAJOR) -> Layout:
    """Region layout: codes at 0, then scales, then zeros, each 64-byte aligned. scales_shape is the
    canonical array's; a ROWS4 payload stores codes, block scales and zeros of the padded rows."""
    n_blocks = -(-cols // block)
    row_bytes = n_blocks * fmt.code_bytes(block)
    padded = stored_rows(rows, weight_layout)
    scales_shape = (rows, n_blocks) if scale_kind == ids.SCALE_BLOCK else (rows,)
    scales_count = padded * n_blocks if scale_kind == ids.SCALE_BLOCK else rows
    scales_at = _align(padded * row_bytes)
    end = scales_at + scales_count * _SCALE_DTYPES[scale_kind].itemsize
    zeros_at = 0
    if has_zeros:
        zeros_at = _align(end)
        end = zeros_at + padded * n_blocks
    return Layout(n_blocks, n_blocks * block, row_bytes, scales_at, scales_shape, zeros_at, end)


def to_rows4(a: np.ndarray, word: int) -> np.ndarray:
    """Canonical [rows, n] -> ROWS4 order, flat: rows padded with zeros to groups of 4, then per group
    `word`-element words of the 4 rows side by side ([groups, n / word, 4, word])."""
    rows, n = a.shape
    g = ids.ROWS4_GROUP
    padded = np.zeros((stored_rows(rows, ids.LAYOUT_ROWS4), n), a.dtype)
    padded[:rows] = a
    return np.ascontiguousarray(padded.reshape(-1, g, n // word, word).transpose(0, 2, 1, 3)).reshape(-1)


def from_rows4(flat: np.ndarray, rows: int, n: int, word: int) -> np.ndarray:
    """Inverse of to_rows4: the canonical [rows, n] array (a copy)."""
    g = ids.ROWS4_GROUP
    groups = -(-rows // g)
    a = flat.reshape(groups, n // word, g, word).transpose(0, 2, 1, 3).reshape(groups * g, n)
    return np.ascontiguousarray(a[:rows])


@dataclass(eq=False, repr=False)
class PackedTensor:
    """A [rows, cols] weight matrix packed in one of the formats of edgeq.formats.FORMATS."""

    format: int
    name: str
    rows: int
    cols: int
    block: int
    scale_kind: int
    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None = None
    layout: int = ids.LAYOUT_ROW_MAJOR

    def __post_init__(self) -> None:
        problem = layout_problem(self.fmt, self.rows, self.cols, self.block, self.scale_kind, self.zeros is not None,
                                 self.layout)
        if problem:
            raise ValueError(problem)
        lay = self._layout()
        checks = [("codes", self.codes, np.uint8, (self.rows, lay.row_bytes)),
                  ("scales", self.scales, _SCALE_DTYPES[self.scale_kind], lay.scales_shape)]
        if self.zeros is not None:
            checks.append(("zeros", self.zeros, np.uint8, (self.rows, lay.n_blocks)))
        for what, arr, dtype, shape in checks:
            if arr.dtype != dtype or arr.shape != shape:
                raise ValueError(f"{self.name}: {what} must be {np.dtype(dtype)} {list(shape)}, "
                                 f"got {arr.dtype} {list(arr.shape)}")

    def __repr__(self) -> str:
        return (f"PackedTensor({self.name} [{self.rows}x{self.cols}], block {self.block}, "
                f"scale {SCALE_NAMES[self.scale_kind]}{', zero points' if self.zeros is not None else ''}, "
                f"{self.bits_per_weight:.4f} bpw)")

    @property
    def fmt(self) -> WeightFormat:
        from edgeq.formats import by_id  # the registry imports this module

        return by_id(self.format)

    def _layout(self) -> Layout:
        return layout(self.fmt, self.rows, self.cols, self.block, self.scale_kind, self.zeros is not None, self.layout)

    def with_layout(self, weight_layout: int) -> PackedTensor:
        """The same tensor, stored in `weight_layout` (the arrays are shared)."""
        return PackedTensor(self.format, self.name, self.rows, self.cols, self.block, self.scale_kind, self.codes,
                            self.scales, self.zeros, weight_layout)

    @property
    def n_blocks(self) -> int:
        return -(-self.cols // self.block)

    @property
    def padded_cols(self) -> int:
        return self.n_blocks * self.block

    @property
    def scales_at(self) -> int:
        return self._layout().scales_at

    @property
    def zeros_at(self) -> int:
        return self._layout().zeros_at

    @property
    def nbytes(self) -> int:
        """Bytes of the payload: codes, scales, zero points and the alignment gaps between them."""
        return self._layout().nbytes

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per real (unpadded) weight, alignment included, as docs/formats.md defines it."""
        return self.nbytes * 8 / (self.rows * self.cols)

    def regions(self) -> tuple[Region, ...]:
        """The payload's regions as stored (ROWS4: padded to whole groups of 4 rows)."""
        return tuple(Region(name, at, arr.nbytes) for name, at, arr in self._stored())

    def _stored(self) -> list[tuple[str, int, np.ndarray]]:
        """(region, offset, array as stored) of codes, scales and zeros."""
        lay = self._layout()
        scales = self.scales.astype(self.scales.dtype.newbyteorder("<"), copy=False)
        out = [("codes", 0, self.codes), ("scales", lay.scales_at, scales)]
        if self.zeros is not None:
            out.append(("zeros", lay.zeros_at, self.zeros))
        if self.layout == ids.LAYOUT_ROWS4:
            out = [(name, at, to_rows4(np.ascontiguousarray(arr), 4 if name == "codes" else 1) if arr.ndim == 2 else arr)
                   for name, at, arr in out]
        return out

    def payload(self) -> Payload:
        """The bytes the blob stores for this tensor (gaps are zero) and the region offsets."""
        lay = self._layout()
        buf = np.zeros(lay.nbytes, np.uint8)
        for _, at, arr in self._stored():
            buf[at : at + arr.nbytes] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
        return Payload(buf.tobytes(), lay.scales_at, lay.zeros_at)

    @classmethod
    def from_payload(cls, fmt: WeightFormat | int | str, rows: int, cols: int, block: int, scale_kind: int,
                     buffer, scales_at: int, zeros_at: int, has_zeros: bool | None = None,
                     weight_layout: int = ids.LAYOUT_ROW_MAJOR) -> PackedTensor:
        """Views over `buffer` (bytes, memoryview, mmap): nothing is copied (ROWS4: converted to
        canonical arrays); every size is checked.

        `has_zeros` defaults to `zeros_at != 0`. Any inconsistency raises BlobError naming it.
        """
        from edgeq.formats import resolve

        try:
            f = resolve(fmt)
        except EdgeqError as e:
            raise BlobError(str(e)) from None
        has_zeros = bool(zeros_at) if has_zeros is None else has_zeros
        problem = layout_problem(f, rows, cols, block, scale_kind, has_zeros, weight_layout)
        if problem:
            raise BlobError(problem)
        if has_zeros != bool(zeros_at):
            raise BlobError(f"{f.name}: zero points {'expected' if has_zeros else 'not expected'} "
                            f"but zeros_at is {zeros_at}")
        view = memoryview(buffer).cast("B")
        lay = layout(f, rows, cols, block, scale_kind, has_zeros, weight_layout)
        padded = stored_rows(rows, weight_layout)
        codes_size = padded * lay.row_bytes
        scales_dtype = _SCALE_DTYPES[scale_kind]
        scales_count = padded * lay.n_blocks if scale_kind == ids.SCALE_BLOCK else rows
        scales_size = scales_count * scales_dtype.itemsize
        regions = [("scales", scales_at, codes_size, scales_size)]
        if has_zeros:
            regions.append(("zeros", zeros_at, scales_at + scales_size, padded * lay.n_blocks))
        end = codes_size
        for what, at, earliest, size in regions:
            if at % ids.ALIGN:
                raise BlobError(f"{f.name}: {what} offset {at} is not {ids.ALIGN}-byte aligned")
            if at < earliest:
                raise BlobError(f"{f.name}: {what} at offset {at} overlaps the previous region (ends at {earliest})")
            end = at + size
        if view.nbytes != end:
            raise BlobError(f"{f.name} [{rows}, {cols}] block {block}: payload is {view.nbytes} bytes, "
                            f"its regions need exactly {end}")
        codes = np.frombuffer(view, np.uint8, codes_size, 0)
        scales = np.frombuffer(view, scales_dtype, scales_count, scales_at)
        zeros = np.frombuffer(view, np.uint8, padded * lay.n_blocks, zeros_at) if has_zeros else None
        if zeros is not None and zeros.max() > 15:
            raise BlobError(f"{f.name}: zero point {int(zeros.max())} is outside 0..15")
        if weight_layout == ids.LAYOUT_ROWS4:
            codes = from_rows4(codes, rows, lay.row_bytes, 4)
            if scale_kind == ids.SCALE_BLOCK:
                scales = from_rows4(scales, rows, lay.n_blocks, 1)
            if zeros is not None:
                zeros = from_rows4(zeros, rows, lay.n_blocks, 1)
        codes = codes.reshape(rows, lay.row_bytes)
        scales = scales.reshape(lay.scales_shape)
        if zeros is not None:
            zeros = zeros.reshape(rows, lay.n_blocks)
        return cls(f.id, f.name, rows, cols, block, scale_kind, codes, scales, zeros, weight_layout)

    def int_values(self) -> np.ndarray:
        """int8 [rows, padded_cols]: the integer value of every code; padded positions are 0."""
        f = self.fmt
        values = f.to_values(f.decode(np.ascontiguousarray(self.codes), self.block), self.zeros, self.block)
        if self.padded_cols != self.cols:
            values[:, self.cols :] = 0
        return values

    def dequantize(self) -> np.ndarray:
        """float32 [rows, cols]: value x scale, one fp32 multiply per weight (GGUF's order)."""
        v = self.int_values().astype(np.float32)
        if self.scale_kind == ids.SCALE_ROW:
            v *= self.scales.astype(np.float32)[:, None]
        else:
            blocks = v.reshape(self.rows, self.n_blocks, self.block)
            blocks *= self.scales.astype(np.float32)[:, :, None]
        return np.ascontiguousarray(v[:, : self.cols])
