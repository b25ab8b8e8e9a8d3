"""What every bit format provides: integer values <-> stored symbols <-> code bytes, vectorised.

A *symbol* is what one weight occupies in the code bytes before bit packing: T2's 2-bit code,
T158's trit, B1's bit, Q4's nibble, I8's byte. Each format module implements `encode` (symbols ->
code bytes) and `decode` (the inverse) on whole [rows, padded_cols] arrays, no loops over blocks.
"""

from __future__ import annotations

import numpy as np

from edgeq.formats import ids
from edgeq.formats.packed import PackedTensor, layout, layout_problem


class WeightFormat:
    """One bit format. Subclasses set the class attributes and implement encode/decode."""

    id: int
    name: str
    block: int                   # default block (Q4: default group)
    blocks: tuple[int, ...]      # blocks the format allows
    scale_kinds: tuple[int, ...]  # the first one is the default
    lo: int                      # integer values pack() accepts (symmetric)
    hi: int
    offset: int = 0              # symbol = value + offset (Q4 asymmetric: + zero point instead)
    zero_points: bool = False    # may carry a uint8 zero point per block

    def __repr__(self) -> str:
        return f"<format {self.name} id={self.id}>"

    def code_bytes(self, block: int) -> int:
        raise NotImplementedError

    def encode(self, symbols: np.ndarray, block: int) -> np.ndarray:
        """uint8 symbols [rows, padded_cols] (C-contiguous) -> codes uint8 [rows, row_bytes]."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        """codes uint8 [rows, row_bytes] (C-contiguous) -> symbols uint8 [rows, padded_cols]."""
        raise NotImplementedError

    def to_symbols(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        """int8 values [rows, padded_cols] -> uint8 symbols."""
        return (values.astype(np.int16) + self.offset).astype(np.uint8)

    def to_values(self, symbols: np.ndarray, zeros: np.ndarray | None, block: int) -> np.ndarray:
        """uint8 symbols [rows, padded_cols] -> int8 values."""
        return (symbols.astype(np.int16) - self.offset).astype(np.int8)

    def check_values(self, values: np.ndarray, zeros: np.ndarray | None, block: int) -> None:
        """Raises ValueError when a value has no code in this format."""
        lo, hi = int(values.min()), int(values.max())
        if lo < self.lo or hi > self.hi:
            raise ValueError(f"{self.name}: values must lie in [{self.lo}, {self.hi}], got [{lo}, {hi}]")

    def block_problem(self, block: int, scale_kind: int) -> str | None:
        """Why this block / scale kind pair is not allowed (beyond `blocks` and `scale_kinds`), or None."""
        return None

    def unpack_codes(self, codes: np.ndarray, block: int | None = None) -> np.ndarray:
        """Code bytes [rows, row_bytes] -> symbols [rows, padded_cols] (the stored code of each weight)."""
        return self.decode(np.ascontiguousarray(codes, np.uint8), self.block if block is None else block)

    def pack(self, values: np.ndarray, scales, zeros=None, scale_kind: int | None = None,
             block: int | None = None) -> PackedTensor:
        """Integer values [rows, cols] + scales (+ zero points) -> PackedTensor.

        scales: SCALE_ROW fp32 [rows] (a scalar is repeated per row); SCALE_BLOCK [rows, n_blocks],
        stored as fp16. Rows are padded with the code of 0 to a whole number of blocks.
        """
        block = self.block if block is None else block
        scale_kind = self.scale_kinds[0] if scale_kind is None else scale_kind
        values = np.asarray(values)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{self.name}: values must be a 2-D integer array, got {values.dtype} {values.shape}")
        rows, cols = values.shape
        problem = layout_problem(self, rows, cols, block, scale_kind, zeros is not None)
        if problem:
            raise ValueError(problem)
        lay = layout(self, rows, cols, block, scale_kind, zeros is not None)
        if scale_kind == ids.SCALE_ROW:
            scales = np.ascontiguousarray(np.broadcast_to(np.asarray(scales, np.float32), (rows,)))
        else:
            scales = np.ascontiguousarray(np.asarray(scales).astype(np.float16))
        if zeros is not None:
            zeros = np.ascontiguousarray(np.asarray(zeros).astype(np.uint8))
            if zeros.shape != (rows, lay.n_blocks) or zeros.max() > 15:
                raise ValueError(f"{self.name}: zero points must be 0..15 of shape {[rows, lay.n_blocks]}")
        self.check_values(values, zeros, block)
        padded = np.zeros((rows, lay.padded_cols), np.int8)
        padded[:, :cols] = values
        codes = self.encode(self.to_symbols(padded, zeros, block), block)
        return PackedTensor(self.id, self.name, rows, cols, block, scale_kind, codes, scales, zeros)
