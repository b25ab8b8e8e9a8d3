"""What every bit format provides: encode/decode of integer values per block."""

from __future__ import annotations

import numpy as np

from edgeq.errors import BlobError
from edgeq.formats import ids
from edgeq.formats.packed import PackedTensor


class Format:
    """One bit format. Subclasses set the ids and implement encode/decode (vectorised)."""

    id: int
    name: str
    block: int            # default block (group) size
    blocks: tuple[int, ...]
    scale_kinds: tuple[int, ...]
    offset: int = 0       # stored code minus offset = value (Q4 symmetric: 8)
    nominal_bpw: float

    def code_bytes(self, block: int) -> int:
        raise NotImplementedError

    def encode(self, values: np.ndarray, block: int) -> np.ndarray:
        """int8 values [rows, padded_cols] -> codes uint8 [rows, n_blocks * code_bytes]."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray, block: int) -> np.ndarray:
        """codes -> stored code values [rows, padded_cols] (value + offset)."""
        raise NotImplementedError

    def check(self, block: int, scale_kind: int, has_zeros: bool) -> None:
        if block not in self.blocks:
            raise BlobError(f"{self.name}: block size {block} not one of {self.blocks}")
        if scale_kind not in self.scale_kinds:
            raise BlobError(f"{self.name}: scale kind {scale_kind} not allowed")
        if has_zeros and self.id != ids.FMT_Q4:
            raise BlobError(f"{self.name}: zero points exist only for q4")

    def pack(self, values: np.ndarray, scales: np.ndarray, scale_kind: int | None = None,
             block: int | None = None) -> PackedTensor:
        """Packs integer values [rows, cols] with their scales (per row or per block)."""
        block = block or self.block
        scale_kind = scale_kind if scale_kind is not None else self.scale_kinds[0]
        self.check(block, scale_kind, False)
        rows, cols = values.shape
        nb = -(-cols // block)
        padded = np.zeros((rows, nb * block), np.int8)
        padded[:, :cols] = values
        if scale_kind == ids.SCALE_BLOCK:
            scales = np.ascontiguousarray(np.asarray(scales, np.float16).reshape(rows, nb))
        else:
            scales = np.ascontiguousarray(np.asarray(scales, np.float32).reshape(rows))
        return PackedTensor(self, rows, cols, block, scale_kind, self.encode(padded, block), scales)
