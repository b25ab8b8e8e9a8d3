"""Reads a blob zero-copy over mmap, bounds-checking every offset before it is used.

Any problem raises BlobError with one line naming what is wrong; nothing is read out of bounds.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import mmap
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.blob.writer import file_crc, header_crc
from edgeq.errors import BlobError
from edgeq.formats import FORMATS, PackedTensor, by_id
from edgeq.formats import ids as F
from edgeq.formats.packed import LAYOUT_NAMES, ROWS4_FORMATS
from edgeq.graph import PLAIN_DTYPES, Graph, Op, Tensor

HEADER_SIZE = ctypes.sizeof(L.edgeq_header_t)
SECTION_SIZE = ctypes.sizeof(L.edgeq_section_t)
TENSOR_SIZE = ctypes.sizeof(L.edgeq_tensor_t)
GRAPH_SIZE = ctypes.sizeof(L.edgeq_graph_t)
OP_SIZE = ctypes.sizeof(L.edgeq_op_t)
MAX_SECTIONS = 16
KNOWN_FORMATS = set(PLAIN_DTYPES) | {fmt.id for fmt in FORMATS.values()}


@dataclass
class Blob:
    """A parsed blob; `graph` tensors are views into the mapped file (zero-copy)."""

    path: Path
    header: L.edgeq_header_t
    sections: dict[int, L.edgeq_section_t]
    records: list[L.edgeq_tensor_t]
    graph: Graph
    size: int
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return f"{self.header.version_major}.{self.header.version_minor}"

    @property
    def metadata(self) -> dict:
        return self.graph.metadata

    def section_bytes(self, kind: int) -> memoryview:
        sec = self.sections[kind]
        return self._view[sec.offset : sec.offset + sec.size]

    _view: memoryview = field(default=None, repr=False)  # type: ignore[assignment]


def _struct(cls, view: memoryview, at: int, what: str):
    size = ctypes.sizeof(cls)
    if at < 0 or at + size > len(view):
        raise BlobError(f"{what} at byte {at} runs past the end of the file ({len(view)} bytes)")
    return cls.from_buffer_copy(view[at : at + size])


def _open_view(path: Path) -> memoryview:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return memoryview(b"")
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    except FileNotFoundError:
        raise BlobError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BlobError(f"{path}: is a directory, not a blob") from None
    except PermissionError:
        raise BlobError(f"{path}: permission denied") from None


def _header(view: memoryview) -> L.edgeq_header_t:
    if len(view) < HEADER_SIZE:
        raise BlobError(f"truncated: file is {len(view)} bytes, the header alone needs {HEADER_SIZE}")
    header = L.edgeq_header_t.from_buffer_copy(view[:HEADER_SIZE])
    if bytes(view[:4]) != L.MAGIC:
        raise BlobError(f"not an edgeq blob: magic is {bytes(view[:4])!r}, expected {L.MAGIC!r}")
    if header.version_major > L.VERSION_MAJOR:
        raise BlobError(
            f"blob format version {header.version_major}.{header.version_minor} is newer than this "
            f"edgeq reads ({L.VERSION_MAJOR}.x); upgrade edgeq"
        )
    if header.version_major < 1:
        raise BlobError(f"blob format version {header.version_major}.{header.version_minor} is not supported")
    if header.file_size != len(view):
        raise BlobError(f"truncated or extended: header says {header.file_size} bytes, file has {len(view)}")
    if not 1 <= header.n_sections <= MAX_SECTIONS:
        raise BlobError(f"header: section count {header.n_sections} outside 1..{MAX_SECTIONS}")
    if header.section_table_offset != HEADER_SIZE:
        raise BlobError(f"header: section table at byte {header.section_table_offset}, expected {HEADER_SIZE}")
    end = HEADER_SIZE + header.n_sections * SECTION_SIZE
    if end > len(view):
        raise BlobError(f"truncated: section table ends at byte {end}, file has {len(view)}")
    got = header_crc(view, header.n_sections)
    if got != header.header_crc:
        raise BlobError(f"header checksum mismatch (stored {header.header_crc:08x}, computed {got:08x})")
    return header


def _sections(view: memoryview, header: L.edgeq_header_t) -> dict[int, L.edgeq_section_t]:
    sections: dict[int, L.edgeq_section_t] = {}
    table_end = HEADER_SIZE + header.n_sections * SECTION_SIZE
    spans = []
    for i in range(header.n_sections):
        sec = _struct(L.edgeq_section_t, view, HEADER_SIZE + i * SECTION_SIZE, f"section entry {i}")
        name = L.SECTION_NAMES.get(sec.kind)
        if name is None:
            raise BlobError(f"section {i}: unknown section kind {sec.kind}")
        if sec.kind in sections:
            raise BlobError(f"section {i}: duplicate {name} section")
        if sec.offset % L.ALIGN or sec.offset < table_end or sec.offset + sec.size > len(view):
            raise BlobError(
                f"{name} section: offset {sec.offset} size {sec.size} lies outside the file "
                f"({len(view)} bytes) or is not {L.ALIGN}-byte aligned"
            )
        spans.append((sec.offset, sec.offset + sec.size, name))
        sections[sec.kind] = sec
    spans.sort()
    for (_, a1, an), (b0, _, bn) in itertools.pairwise(spans):
        if b0 < a1:
            raise BlobError(f"{an} and {bn} sections overlap")
    for kind in (L.SECTION_STRINGS, L.SECTION_TENSORS, L.SECTION_GRAPH, L.SECTION_METADATA, L.SECTION_DATA):
        if kind not in sections:
            raise BlobError(f"missing {L.SECTION_NAMES[kind]} section")
    sig = sections.get(L.SECTION_SIGNATURE)
    if (sig is not None) != bool(header.flags & L.FLAG_SIGNED):
        raise BlobError("header signed flag and signature section disagree")
    if sig is not None and sig.offset + sig.size != len(view):
        raise BlobError("signature section must be the last bytes of the file")
    for kind, sec in sections.items():
        got = zlib.crc32(view[sec.offset : sec.offset + sec.size]) & 0xFFFFFFFF
        if got != sec.crc32:
            raise BlobError(
                f"{L.SECTION_NAMES[kind]} section checksum mismatch (stored {sec.crc32:08x}, computed {got:08x})"
            )
    sig_span = (sig.offset, sig.offset + sig.size) if sig is not None else None
    got = file_crc(view, sig_span)
    if got != header.file_crc:
        raise BlobError(f"file checksum mismatch (stored {header.file_crc:08x}, computed {got:08x})")
    return sections


def _name(strings: memoryview, at: int, index: int) -> str:
    if at >= len(strings):
        raise BlobError(f"tensor {index}: name offset {at} outside the strings section ({len(strings)} bytes)")
    end = bytes(strings[at:]).find(b"\0")
    if end < 0:
        raise BlobError(f"tensor {index}: name at offset {at} is not NUL-terminated")
    try:
        return bytes(strings[at : at + end]).decode()
    except UnicodeDecodeError:
        raise BlobError(f"tensor {index}: name at offset {at} is not UTF-8") from None


def _tensor(view: memoryview, data: L.edgeq_section_t, rec: L.edgeq_tensor_t, name: str, i: int) -> Tensor:
    what = f"tensor {i} ({name})"
    if rec.format not in KNOWN_FORMATS:
        raise BlobError(f"{what}: unknown format id {rec.format}")
    if rec.ndim > L.MAX_DIMS:
        raise BlobError(f"{what}: ndim {rec.ndim} exceeds {L.MAX_DIMS}")
    shape = tuple(int(rec.shape[d]) for d in range(rec.ndim))
    if any(s <= 0 or s > 1 << 30 for s in shape):
        raise BlobError(f"{what}: bad shape {shape}")
    t = Tensor(name, rec.format, shape, qscale=rec.qscale, qzero=rec.qzero, flags=rec.flags,
               test_index=rec.test_index)
    if rec.layout not in LAYOUT_NAMES:
        raise BlobError(f"{what}: unknown layout id {rec.layout}")
    if rec.layout != F.LAYOUT_ROW_MAJOR and (rec.format not in ROWS4_FORMATS or rec.scale_kind == F.SCALE_NONE
                                             or not rec.flags & L.TENSOR_CONST):
        raise BlobError(f"{what}: layout {LAYOUT_NAMES[rec.layout]} is only defined for t2 and q4 weights")
    if not rec.flags & L.TENSOR_CONST:
        if rec.data_size:
            raise BlobError(f"{what}: activation tensor has a payload")
        return t
    start, end = rec.data_offset, rec.data_offset + rec.data_size
    if start % L.ALIGN or start < data.offset or end > data.offset + data.size:
        raise BlobError(
            f"{what}: payload [{start}, {end}) lies outside the data section "
            f"[{data.offset}, {data.offset + data.size}) or is not {L.ALIGN}-byte aligned"
        )
    payload = view[start:end]
    if rec.format in PLAIN_DTYPES and rec.scale_kind == F.SCALE_NONE:
        dtype = np.dtype(PLAIN_DTYPES[rec.format])
        count = int(np.prod(shape, dtype=np.int64))
        if rec.data_size != count * dtype.itemsize:
            raise BlobError(f"{what}: payload is {rec.data_size} bytes, shape {shape} needs {count * dtype.itemsize}")
        t.array = np.frombuffer(payload, dtype=dtype).reshape(shape)
        return t
    if rec.ndim != 2:
        raise BlobError(f"{what}: weight formats are 2-D [rows, cols], got shape {shape}")
    t.packed = PackedTensor.from_payload(
        by_id(rec.format), shape[0], shape[1], rec.block, rec.scale_kind, payload, rec.scales_at, rec.zeros_at,
        weight_layout=rec.layout,
    )
    return t


def _graph(view: memoryview, sec: L.edgeq_section_t, n_tensors: int) -> tuple[list[Op], list[int], list[int]]:
    gv = view[sec.offset : sec.offset + sec.size]
    if len(gv) < GRAPH_SIZE:
        raise BlobError(f"graph section is {len(gv)} bytes, its header needs {GRAPH_SIZE}")
    head = L.edgeq_graph_t.from_buffer_copy(gv[:GRAPH_SIZE])
    if len(gv) != GRAPH_SIZE + head.n_ops * OP_SIZE:
        raise BlobError(f"graph section: {head.n_ops} ops need {GRAPH_SIZE + head.n_ops * OP_SIZE} bytes, has {len(gv)}")
    if head.n_inputs > 8 or head.n_outputs > 8 or head.n_outputs == 0:
        raise BlobError(f"graph: {head.n_inputs} inputs / {head.n_outputs} outputs out of range")

    def index(v: int, what: str) -> int:
        if not 0 <= v < n_tensors:
            raise BlobError(f"{what}: tensor index {v} out of range (0..{n_tensors - 1})")
        return v

    inputs = [index(head.inputs[i], f"graph input {i}") for i in range(head.n_inputs)]
    outputs = [index(head.outputs[i], f"graph output {i}") for i in range(head.n_outputs)]
    ops = []
    for k in range(head.n_ops):
        rec = L.edgeq_op_t.from_buffer_copy(gv[GRAPH_SIZE + k * OP_SIZE : GRAPH_SIZE + (k + 1) * OP_SIZE])
        if rec.op not in L.OP_NAMES:
            raise BlobError(f"op {k}: unknown op id {rec.op}")
        if rec.n_inputs > L.OP_MAX_INPUTS or rec.n_outputs > L.OP_MAX_OUTPUTS or rec.n_outputs == 0:
            raise BlobError(f"op {k} ({L.OP_NAMES[rec.op]}): bad input/output count")
        if rec.flags & ~L.OPF_ALL:
            raise BlobError(f"op {k} ({L.OP_NAMES[rec.op]}): unknown flags {rec.flags & ~L.OPF_ALL:#x}")
        ins = [rec.inputs[i] if rec.inputs[i] < 0 else index(rec.inputs[i], f"op {k} input {i}")
               for i in range(rec.n_inputs)]
        outs = [index(rec.outputs[i], f"op {k} output {i}") for i in range(rec.n_outputs)]
        ops.append(Op(rec.op, ins, outs, list(rec.attrs), rec.flags))
    return ops, inputs, outputs


def read_blob(path: str | os.PathLike) -> Blob:
    """Maps and fully validates a blob (checksums, bounds, ids); raises BlobError on any fault."""
    path = Path(path)
    view = _open_view(path)
    header = _header(view)
    sections = _sections(view, header)
    strings = view[sections[L.SECTION_STRINGS].offset :][: sections[L.SECTION_STRINGS].size]
    tsec = sections[L.SECTION_TENSORS]
    if tsec.size % TENSOR_SIZE:
        raise BlobError(f"tensors section is {tsec.size} bytes, not a multiple of {TENSOR_SIZE}")
    records = [
        L.edgeq_tensor_t.from_buffer_copy(view[tsec.offset + i * TENSOR_SIZE : tsec.offset + (i + 1) * TENSOR_SIZE])
        for i in range(tsec.size // TENSOR_SIZE)
    ]
    tensors = [
        _tensor(view, sections[L.SECTION_DATA], rec, _name(strings, rec.name, i), i) for i, rec in enumerate(records)
    ]
    ops, inputs, outputs = _graph(view, sections[L.SECTION_GRAPH], len(tensors))
    msec = sections[L.SECTION_METADATA]
    try:
        metadata = json.loads(bytes(view[msec.offset : msec.offset + msec.size]) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BlobError(f"metadata section is not valid JSON: {e}") from None
    target = header.target.decode(errors="replace")
    graph = Graph(tensors, ops, inputs, outputs, metadata, target)
    checks = {"header_crc": "ok", "section_crcs": "ok", "file_crc": "ok"}
    checks["signature"] = "present (not verified)" if L.SECTION_SIGNATURE in sections else "unsigned"
    blob = Blob(path, header, sections, records, graph, len(view), checks)
    blob._view = view
    return blob
