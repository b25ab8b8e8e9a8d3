"""Bit formats: pack/unpack in numpy, the spec in code (docs/formats.md).

Adding a format = one module with a FORMAT object + one line in `_MODULES` + its id in edgeq_blob.h.
"""

from edgeq.errors import BlobError, EdgeqError
from edgeq.formats import b1, i8, q4, t2, t158
from edgeq.formats.b1 import pack_binary_activations, unpack_binary_activations
from edgeq.formats.base import WeightFormat
from edgeq.formats.packed import PackedTensor, Payload, Region

_MODULES = (t2, t158, b1, q4, i8)

FORMATS: dict[str, WeightFormat] = {m.FORMAT.name: m.FORMAT for m in _MODULES}
_BY_ID: dict[int, WeightFormat] = {f.id: f for f in FORMATS.values()}


def by_id(fmt_id: int) -> WeightFormat:
    """The weight format with blob format id `fmt_id` (BlobError when there is none)."""
    try:
        return _BY_ID[fmt_id]
    except KeyError:
        raise BlobError(f"unknown weight format id {fmt_id}") from None


def resolve(fmt: "WeightFormat | int | str") -> WeightFormat:
    """A format given as an object, a blob id or a name."""
    if isinstance(fmt, WeightFormat):
        return fmt
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise EdgeqError(f"unknown format '{fmt}'; choose from {', '.join(FORMATS)}")
        return FORMATS[fmt]
    return by_id(int(fmt))


__all__ = ["FORMATS", "PackedTensor", "Payload", "Region", "WeightFormat", "by_id", "pack_binary_activations",
           "resolve", "unpack_binary_activations"]
