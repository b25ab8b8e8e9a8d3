"""GGUF weight files -> an edgeq Graph of constant tensors (docs/interop.md).

TQ1_0 / TQ2_0 / Q4_0 become T158 / T2 / Q4 bit for bit (edgeq.formats.gguf); F32 / F16 stay plain
float constants and BF16 widens to F32 exactly; Q8_0 is requantized to I8 per row, which is *not*
lossless, so its measured error is recorded in the blob metadata. Hostile files are the reason for
`validate`: GGUF headers carry counts, lengths, dims and offsets that gguf-py trusts (it loops
over a 2^64 array count, reads past the end and reshapes whatever it gets), so every one of them is
bounds-checked against the file before gguf-py sees it.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import ids as F
from edgeq.formats.gguf import from_gguf
from edgeq.graph import Graph, Tensor

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NESTING = 4  # arrays of arrays of ...: real files nest at most once
MAX_DIM = 1 << 30  # the blob's own per-dimension limit

# GGML type id -> (name, values per block, bytes per block): ggml.h / gguf-py GGML_QUANT_SIZES (stable ids)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}
LOSSLESS = {"TQ1_0": "t158", "TQ2_0": "t2", "Q4_0": "q4", "F32": "f32", "F16": "f16", "BF16": "f32"}
CONVERTED = {"Q8_0": "i8"}
SUPPORTED = (*LOSSLESS, *CONVERTED)

# GGUF metadata value types: id -> fixed size in bytes (STRING = 8, ARRAY = 9 are variable)
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4


@dataclass
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # GGUF order: dims[0] is the contiguous (row) length
    ggml_type: int
    offset: int  # from the start of the data section

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.ggml_type][0]

    @property
    def nbytes(self) -> int:
        _, block, size = GGML_TYPES[self.ggml_type]
        return int(np.prod(self.dims, dtype=object)) // block * size


@dataclass
class Header:
    """What `validate` learned: version, the scalar/string metadata, tensor infos, data start."""

    version: int
    metadata: dict[str, object] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_start: int = 0


class _Cursor:
    """Bounds-checked little-endian reads over the file; every failure names what was being read."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.size, self.path = buf, 0, len(buf), path

    def fail(self, msg: str) -> EdgeqError:
        return EdgeqError(f"{self.path}: malformed GGUF: {msg}")

    def take(self, n: int, what: str) -> int:
        """Advances over n bytes; returns where they start."""
        if n < 0 or n > self.size - self.pos:
            raise self.fail(f"{what} at byte {self.pos} needs {n} bytes, the file ends at {self.size}")
        at = self.pos
        self.pos += n
        return at

    def unpack(self, fmt: str, what: str):
        return struct.unpack_from("<" + fmt, self.buf, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("Q", f"{what} length")
        at = self.take(n, what)
        try:
            return bytes(self.buf[at : at + n]).decode()
        except UnicodeDecodeError:
            raise self.fail(f"{what} at byte {at} is not UTF-8") from None

    def count(self, what: str, min_item: int) -> int:
        """A uint64 count, refused when that many items of at least min_item bytes cannot fit."""
        n = self.unpack("Q", what)
        if n * min_item > self.size - self.pos:
            raise self.fail(f"{what} {n} at byte {self.pos - 8} cannot fit in the {self.size - self.pos} "
                            f"bytes left")
        return n

    def value(self, vtype: int, what: str, depth: int = 0):
        """Skips (and for scalars and strings returns) one metadata value of type vtype."""
        if vtype in _SCALAR_SIZES:
            fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}[vtype]
            return self.unpack(fmt, what)
        if vtype == _STRING:
            return self.string(what)
        if vtype != _ARRAY:
            raise self.fail(f"{what}: unknown value type {vtype}")
        if depth >= MAX_NESTING:
            raise self.fail(f"{what}: arrays nested deeper than {MAX_NESTING}")
        etype = self.unpack("I", f"{what} element type")
        if etype in _SCALAR_SIZES:
            n = self.count(f"{what} element count", _SCALAR_SIZES[etype])
            self.take(n * _SCALAR_SIZES[etype], what)
            return None
        if etype not in (_STRING, _ARRAY):
            raise self.fail(f"{what}: unknown array element type {etype}")
        n = self.count(f"{what} element count", 8 if etype == _STRING else 12)
        for i in range(n):
            self.value(etype, f"{what}[{i}]", depth + 1)
        return None


def validate(path: Path) -> Header:
    """Walks the header, metadata and tensor infos with every count, length, dim and offset checked
    against the file size; raises EdgeqError naming the first problem. Nothing large is allocated."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size < 24:
                raise EdgeqError(f"{path}: malformed GGUF: truncated ({size} bytes, the header alone needs 24)")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _walk(_Cursor(buf, path))
    except OSError as e:
        raise EdgeqError(f"{path}: cannot read ({e.strerror or e})") from None


def _walk(c: _Cursor) -> Header:
    magic = bytes(c.buf[:4])
    c.take(4, "magic")
    if magic != MAGIC:
        raise c.fail(f"magic is {magic!r}, expected {MAGIC!r}")
    version = c.unpack("I", "version")
    if version not in VERSIONS:
        hint = " (a big-endian file?)" if version & 0xFFFF == 0 else ""
        raise c.fail(f"version {version} is not supported{hint} (supported: {', '.join(map(str, VERSIONS))})")
    head = Header(version)
    n_tensors = c.count("tensor count", 32)  # smallest tensor info: name length, 1 dim, type, offset
    n_kv = c.count("metadata count", 13)  # smallest key/value: key length, type, one byte
    for i in range(n_kv):
        key = c.string(f"metadata key {i}")
        if key in head.metadata:
            raise c.fail(f"metadata key '{key}' appears twice")
        vtype = c.unpack("I", f"type of metadata '{key}'")
        head.metadata[key] = c.value(vtype, f"metadata '{key}'")
        if key == "general.alignment" and vtype != _UINT32:
            raise c.fail(f"general.alignment has value type {vtype}, expected uint32")
    alignment = head.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise c.fail(f"general.alignment {alignment} is not a power of two")
    names: set[str] = set()
    for i in range(n_tensors):
        name = c.string(f"tensor {i} name")
        what = f"tensor {i} ({name})"
        if name in names:
            raise c.fail(f"tensor name '{name}' appears twice")
        names.add(name)
        n_dims = c.unpack("I", f"{what} dim count")
        if not 1 <= n_dims <= MAX_DIMS:
            raise c.fail(f"{what} has {n_dims} dims (1..{MAX_DIMS} allowed)")
        dims = tuple(c.unpack("Q", f"{what} dims") for _ in range(n_dims))
        ggml_type = c.unpack("I", f"{what} type")
        offset = c.unpack("Q", f"{what} offset")
        if any(d == 0 or d > MAX_DIM for d in dims):
            raise c.fail(f"{what} has dims {list(dims)} (each must be 1..{MAX_DIM})")
        if ggml_type not in GGML_TYPES:
            raise c.fail(f"{what} has unknown GGML type id {ggml_type}")
        tname, block, _ = GGML_TYPES[ggml_type]
        if dims[0] % block:
            raise c.fail(f"{what}: {tname} rows hold whole blocks of {block} values, dims[0] is {dims[0]}")
        if offset % alignment:
            raise c.fail(f"{what} data offset {offset} is not {alignment}-byte aligned")
        head.tensors.append(TensorInfo(name, dims, ggml_type, offset))
    head.data_start = -(-c.pos // alignment) * alignment
    for t in head.tensors:
        end = head.data_start + t.offset + t.nbytes
        if end > c.size:
            raise c.fail(f"tensor {t.name} ({t.type_name} {list(t.dims)}) data [{head.data_start + t.offset}, "
                         f"{end}) lies outside the file ({c.size} bytes)")
    return head


def _unsupported(head: Header, path: Path) -> None:
    bad = [t for t in head.tensors if t.type_name not in SUPPORTED]
    if not bad:
        return
    shown = ", ".join(f"{t.name}: {t.type_name}" for t in bad[:50])
    more = f" and {len(bad) - 50} more" if len(bad) > 50 else ""
    raise EdgeqError(f"{path}: {len(bad)} tensor(s) of types edgeq cannot take: {shown}{more} "
                     f"(supported: {', '.join(SUPPORTED)})")


def _requantize_q8_0(data: np.ndarray, rows: int, cols: int) -> tuple:
    """Q8_0 -> I8 per row (edgeq's int8 recipe on the exact Q8_0 values) and its max abs error."""
    from gguf.quants import GGMLQuantizationType, dequantize

    from edgeq.quant.weights import int8_per_channel

    exact = dequantize(np.asarray(data), GGMLQuantizationType.Q8_0).reshape(rows, cols)
    packed = int8_per_channel(exact)
    return packed, float(np.abs(packed.dequantize() - exact).max())


def _convert(t, info: TensorInfo) -> tuple[Tensor, dict]:
    """One gguf-py ReaderTensor -> an edgeq Tensor and its metadata entry."""
    shape = tuple(reversed(info.dims))  # numpy order, last dim contiguous
    rows, cols = int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]
    entry: dict = {"type": info.type_name, "dims": list(info.dims)}
    tname = info.type_name
    if tname in ("TQ1_0", "TQ2_0", "Q4_0"):
        packed = from_gguf(tname, np.asarray(t.data), shape)
    elif tname == "Q8_0":
        packed, err = _requantize_q8_0(t.data, rows, cols)
        entry.update(lossless=err == 0.0, max_abs_error=err)
    else:
        data = np.asarray(t.data)
        if tname == "BF16":
            data = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        array = np.ascontiguousarray(data.reshape(shape))
        fmt = F.FMT_F16 if tname == "F16" else F.FMT_F32
        entry["edgeq"] = LOSSLESS[tname]
        return Tensor(info.name, fmt, shape, array=array, flags=L.TENSOR_CONST), entry
    entry["edgeq"] = packed.name
    return Tensor(info.name, packed.format, (rows, cols), packed=packed, flags=L.TENSOR_CONST), entry


def from_gguf_file(path: str | Path) -> Graph:
    """A GGUF file -> Graph: its tensors as constants under their GGUF names, no ops.

    The blob format needs at least one graph output, so the first tensor is listed as the output
    of this op-less graph (docs/interop.md).
    """
    path = Path(path)
    head = validate(path)
    if not head.tensors:
        raise EdgeqError(f"{path}: the GGUF holds no tensors")
    _unsupported(head, path)
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except (ValueError, KeyError, TypeError, OverflowError) as e:  # after validate: a gguf-py/edgeq disagreement
        raise EdgeqError(f"{path}: gguf-py cannot read this file ({e})") from None
    by_name = {t.name: t for t in reader.tensors}
    g = Graph()
    tensors: dict[str, dict] = {}
    for info in head.tensors:
        tensor, entry = _convert(by_name[info.name], info)
        g.add(tensor)
        tensors[info.name] = entry
    g.tensors[0].flags |= L.TENSOR_OUTPUT
    g.outputs = [0]
    meta = head.metadata
    g.metadata = {
        "model": path.name,
        "source": "gguf",
        "gguf": {"version": head.version, "architecture": meta.get("general.architecture"),
                 "name": meta.get("general.name"), "tensors": tensors},
    }
    return g
