"""PackedTensor: a weight matrix in one of the bit formats, as the blob stores it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeq.errors import BlobError
from edgeq.formats import ids

REGION_ALIGN = 4  # scales and zero points start at the next 4-byte boundary after the codes


def _align(n: int, a: int = REGION_ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class PackedTensor:
    """Codes uint8 [rows, row_bytes]; scales fp16 [rows, n_blocks] (SCALE_BLOCK) or fp32 [rows]
    (SCALE_ROW); zeros uint8 [rows, n_blocks] or None (Q4 asymmetric only)."""

    fmt: object  # edgeq.formats.base.Format
    rows: int
    cols: int
    block: int
    scale_kind: int
    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None = None
    layout: int = ids.LAYOUT_ROW_MAJOR

    @property
    def format(self) -> int:
        return self.fmt.id

    @property
    def n_blocks(self) -> int:
        return -(-self.cols // self.block)

    @property
    def padded_cols(self) -> int:
        return self.n_blocks * self.block

    def int_values(self) -> np.ndarray:
        """Integer value of every code, int16 [rows, padded_cols] (padding is 0)."""
        raw = self.fmt.decode(self.codes, self.block).astype(np.int16)
        if self.zeros is not None:
            return raw - np.repeat(self.zeros.astype(np.int16), self.block, axis=1)
        return raw - self.fmt.offset

    def dequantize(self) -> np.ndarray:
        """float32 [rows, cols]: value x scale (per block or per row)."""
        v = self.int_values().astype(np.float32)
        if self.scale_kind == ids.SCALE_BLOCK:
            v = v.reshape(self.rows, self.n_blocks, self.block) * self.scales.astype(np.float32)[:, :, None]
            v = v.reshape(self.rows, self.padded_cols)
        else:
            v = v * self.scales.astype(np.float32)[:, None]
        return np.ascontiguousarray(v[:, : self.cols])

    def _sizes(self) -> tuple[int, int, int, int]:
        codes = self.rows * self.n_blocks * self.fmt.code_bytes(self.block)
        scales = self.rows * (self.n_blocks * 2 if self.scale_kind == ids.SCALE_BLOCK else 4)
        scales_at = _align(codes)
        zeros = self.rows * self.n_blocks if self.zeros is not None else 0
        zeros_at = _align(scales_at + scales) if zeros else 0
        return codes, scales_at, scales, zeros_at

    @property
    def nbytes(self) -> int:
        _, scales_at, scales, zeros_at = self._sizes()
        return zeros_at + self.rows * self.n_blocks if zeros_at else scales_at + scales

    @property
    def bits_per_weight(self) -> float:
        """Stored bytes x 8 / real weight count."""
        return self.nbytes * 8 / (self.rows * self.cols)

    def payload(self) -> tuple[bytes, int, int]:
        """(bytes, scales_at, zeros_at) exactly as the blob stores the tensor."""
        codes, scales_at, scales, zeros_at = self._sizes()
        out = bytearray(self.nbytes)
        out[:codes] = self.codes.tobytes()
        out[scales_at : scales_at + scales] = self.scales.tobytes()
        if zeros_at:
            out[zeros_at:] = self.zeros.tobytes()
        return bytes(out), scales_at, zeros_at

    @classmethod
    def from_payload(cls, fmt, rows: int, cols: int, block: int, scale_kind: int, buf, scales_at: int,
                     zeros_at: int) -> PackedTensor:
        """Zero-copy views over `buf`; every size and offset is checked first (BlobError)."""
        fmt.check(block, scale_kind, zeros_at != 0)
        nb = -(-cols // block)
        probe = cls(fmt, rows, cols, block, scale_kind, np.empty((0,), np.uint8), np.empty((0,)),
                    np.empty((0,), np.uint8) if zeros_at else None)
        codes, want_scales_at, scales, want_zeros_at = probe._sizes()
        if (scales_at, zeros_at) != (want_scales_at, want_zeros_at) or len(buf) != probe.nbytes:
            raise BlobError(
                f"{fmt.name} [{rows}, {cols}] block {block}: payload is {len(buf)} bytes with scales at "
                f"{scales_at}, zeros at {zeros_at}; expected {probe.nbytes} bytes, scales at {want_scales_at}, "
                f"zeros at {want_zeros_at}")
        mv = memoryview(buf)
        c = np.frombuffer(mv[:codes], np.uint8).reshape(rows, -1)
        if scale_kind == ids.SCALE_BLOCK:
            s = np.frombuffer(mv[scales_at : scales_at + scales], np.float16).reshape(rows, nb)
        else:
            s = np.frombuffer(mv[scales_at : scales_at + scales], np.float32)
        z = np.frombuffer(mv[zeros_at:], np.uint8).reshape(rows, nb) if zeros_at else None
        return cls(fmt, rows, cols, block, scale_kind, c, s, z)
