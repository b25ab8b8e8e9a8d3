"""Bit formats: pack/unpack in numpy, the spec in code (docs/formats.md).

Adding a format = one module with a FORMAT object + one line here + its id in edgeq_blob.h.
"""

from edgeq.errors import BlobError
from edgeq.formats import b1, i8, q4, t2, t158
from edgeq.formats.base import Format
from edgeq.formats.packed import PackedTensor

FORMATS: dict[str, Format] = {f.FORMAT.name: f.FORMAT for f in (t2, t158, b1, q4, i8)}


def by_id(fmt_id: int) -> Format:
    for fmt in FORMATS.values():
        if fmt.id == fmt_id:
            return fmt
    raise BlobError(f"unknown weight format id {fmt_id}")


__all__ = ["FORMATS", "Format", "PackedTensor", "by_id"]
