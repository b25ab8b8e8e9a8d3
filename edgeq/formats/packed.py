"""PackedTensor: one weight matrix in a bit format, as the blob stores it (docs/formats.md).

A packed tensor is three regions, each starting 64-byte aligned inside its payload:

    codes   uint8 [rows, row_bytes]      row_bytes = n_blocks * code_bytes(block)
    scales  SCALE_BLOCK: fp16 [rows, n_blocks]   SCALE_ROW: fp32 [rows]
    zeros   uint8 [rows, n_blocks]        (Q4 asymmetric only)

`payload()` lays them out exactly as the blob writer stores them; `from_payload()` reads them
back as numpy views over the caller's buffer (no copy), so an mmapped blob is used in place.
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
                   has_zeros: bool) -> str | None:
    """Why this combination cannot be a packed tensor of `fmt`, or None when it can."""
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


def layout(fmt: WeightFormat, rows: int, cols: int, block: int, scale_kind: int, has_zeros: bool) -> Layout:
    """Canonical region layout: codes at 0, then scales, then zeros, each 64-byte aligned."""
    n_blocks = -(-cols // block)
    row_bytes = n_blocks * fmt.code_bytes(block)
    scales_shape = (rows, n_blocks) if scale_kind == ids.SCALE_BLOCK else (rows,)
    scales_at = _align(rows * row_bytes)
    end = scales_at + int(np.prod(scales_shape)) * _SCALE_DTYPES[scale_kind].itemsize
    zeros_at = 0
    if has_zeros:
        zeros_at = _align(end)
        end = zeros_at + rows * n_blocks
    return Layout(n_blocks, n_blocks * block, row_bytes, scales_at, scales_shape, zeros_at, end)


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
        problem = layout_problem(self.fmt, self.rows, self.cols, self.block, self.scale_kind, self.zeros is not None)
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
        return layout(self.fmt, self.rows, self.cols, self.block, self.scale_kind, self.zeros is not None)

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
        lay = self._layout()
        out = [Region("codes", 0, self.codes.nbytes), Region("scales", lay.scales_at, self.scales.nbytes)]
        if self.zeros is not None:
            out.append(Region("zeros", lay.zeros_at, self.zeros.nbytes))
        return tuple(out)

    def payload(self) -> Payload:
        """The bytes the blob stores for this tensor (gaps are zero) and the region offsets."""
        lay = self._layout()
        buf = np.zeros(lay.nbytes, np.uint8)
        arrays = [self.codes, self.scales.astype(self.scales.dtype.newbyteorder("<"), copy=False)]
        if self.zeros is not None:
            arrays.append(self.zeros)
        for region, arr in zip(self.regions(), arrays):
            buf[region.offset : region.offset + region.size] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
        return Payload(buf.tobytes(), lay.scales_at, lay.zeros_at)

    @classmethod
    def from_payload(cls, fmt: WeightFormat | int | str, rows: int, cols: int, block: int, scale_kind: int,
                     buffer, scales_at: int, zeros_at: int, has_zeros: bool | None = None) -> PackedTensor:
        """Views over `buffer` (bytes, memoryview, mmap): nothing is copied; every size is checked.

        `has_zeros` defaults to `zeros_at != 0`. Any inconsistency raises BlobError naming it.
        """
        from edgeq.formats import resolve

        try:
            f = resolve(fmt)
        except EdgeqError as e:
            raise BlobError(str(e)) from None
        has_zeros = bool(zeros_at) if has_zeros is None else has_zeros
        problem = layout_problem(f, rows, cols, block, scale_kind, has_zeros)
        if problem:
            raise BlobError(problem)
        if has_zeros != bool(zeros_at):
            raise BlobError(f"{f.name}: zero points {'expected' if has_zeros else 'not expected'} "
                            f"but zeros_at is {zeros_at}")
        view = memoryview(buffer).cast("B")
        lay = layout(f, rows, cols, block, scale_kind, has_zeros)
        codes_size = rows * lay.row_bytes
        scales_dtype = _SCALE_DTYPES[scale_kind]
        scales_size = int(np.prod(lay.scales_shape)) * scales_dtype.itemsize
        regions = [("scales", scales_at, codes_size, scales_size)]
        if has_zeros:
            regions.append(("zeros", zeros_at, scales_at + scales_size, rows * lay.n_blocks))
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
        codes = np.frombuffer(view, np.uint8, codes_size, 0).reshape(rows, lay.row_bytes)
        scales = np.frombuffer(view, scales_dtype, int(np.prod(lay.scales_shape)), scales_at).reshape(lay.scales_shape)
        zeros = None
        if has_zeros:
            zeros = np.frombuffer(view, np.uint8, rows * lay.n_blocks, zeros_at).reshape(rows, lay.n_blocks)
            if zeros.max() > 15:
                raise BlobError(f"{f.name}: zero point {int(zeros.max())} is outside 0..15")
        return cls(f.id, f.name, rows, cols, block, scale_kind, codes, scales, zeros)

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
