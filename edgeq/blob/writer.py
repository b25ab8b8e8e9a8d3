"""Serialises a Graph into a blob file, atomically (temp file + rename)."""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.formats import ids as F
from edgeq.graph import Graph, Tensor


def _align(n: int) -> int:
    return (n + L.ALIGN - 1) // L.ALIGN * L.ALIGN


def _tensor_payload(t: Tensor) -> tuple[bytes, int, int, int, int]:
    """(payload, block, scale_kind, scales_at, zeros_at) of a constant tensor."""
    if t.packed is not None:
        p = t.packed
        payload, scales_at, zeros_at = p.payload()
        return bytes(payload), p.block, p.scale_kind, scales_at, zeros_at
    return np.ascontiguousarray(t.array).tobytes(), 0, F.SCALE_NONE, 0, 0


def _records(graph: Graph, data_start: int) -> tuple[bytes, bytes, bytes]:
    """(strings, tensor table, data section) with data offsets absolute from data_start."""
    strings = bytearray(b"\0")
    table = bytearray()
    data = bytearray()
    for t in graph.tensors:
        rec = L.edgeq_tensor_t()
        rec.name = len(strings)
        strings += t.name.encode() + b"\0"
        rec.format = t.format
        rec.layout = F.LAYOUT_ROW_MAJOR
        rec.ndim = len(t.shape)
        for i, s in enumerate(t.shape):
            rec.shape[i] = s
        rec.flags = t.flags
        rec.qscale = t.qscale
        rec.qzero = t.qzero
        rec.test_index = t.test_index
        if t.is_const:
            payload, rec.block, rec.scale_kind, rec.scales_at, rec.zeros_at = _tensor_payload(t)
            if t.packed is not None:
                rec.layout = getattr(t.packed, "layout", F.LAYOUT_ROW_MAJOR)
            data += b"\0" * (_align(len(data)) - len(data))
            rec.data_offset = data_start + len(data)
            rec.data_size = len(payload)
            data += payload
        table += bytes(rec)
    return bytes(strings), bytes(table), bytes(data)


def _graph_section(graph: Graph) -> bytes:
    head = L.edgeq_graph_t()
    head.n_ops = len(graph.ops)
    head.n_inputs = len(graph.inputs)
    head.n_outputs = len(graph.outputs)
    for i in range(8):
        head.inputs[i] = graph.inputs[i] if i < len(graph.inputs) else -1
        head.outputs[i] = graph.outputs[i] if i < len(graph.outputs) else -1
    out = bytearray(bytes(head))
    for node in graph.ops:
        rec = L.edgeq_op_t()
        rec.op = node.op
        rec.n_inputs = len(node.inputs)
        rec.n_outputs = len(node.outputs)
        rec.flags = node.flags
        for i in range(L.OP_MAX_INPUTS):
            rec.inputs[i] = node.inputs[i] if i < len(node.inputs) else -1
        for i in range(L.OP_MAX_OUTPUTS):
            rec.outputs[i] = node.outputs[i] if i < len(node.outputs) else -1
        for i, v in enumerate(node.attrs):
            rec.attrs[i] = v
        out += bytes(rec)
    return bytes(out)


def file_crc(buf: bytes | bytearray | memoryview, sig_span: tuple[int, int] | None) -> int:
    """CRC32 of the file with header_crc/file_crc and the signature payload taken as zero."""
    crc_at = L.edgeq_header_t.header_crc.offset
    crc = zlib.crc32(buf[:crc_at])
    crc = zlib.crc32(b"\0" * 8, crc)
    if sig_span is None:
        return zlib.crc32(buf[crc_at + 8 :], crc) & 0xFFFFFFFF
    start, end = sig_span
    crc = zlib.crc32(buf[crc_at + 8 : start], crc)
    crc = zlib.crc32(b"\0" * (end - start), crc)
    return zlib.crc32(buf[end:], crc) & 0xFFFFFFFF


def header_crc(buf: bytes | bytearray | memoryview, n_sections: int) -> int:
    """CRC32 of header + section table with the two CRC fields taken as zero."""
    crc_at = L.edgeq_header_t.header_crc.offset
    end = ctypes.sizeof(L.edgeq_header_t) + n_sections * ctypes.sizeof(L.edgeq_section_t)
    crc = zlib.crc32(buf[:crc_at])
    crc = zlib.crc32(b"\0" * 8, crc)
    return zlib.crc32(buf[crc_at + 8 : end], crc) & 0xFFFFFFFF


def serialize(graph: Graph, signature_size: int = 0) -> bytearray:
    """The blob's bytes; with signature_size > 0 a zero-filled SIGNATURE section is reserved last."""
    kinds = [L.SECTION_STRINGS, L.SECTION_TENSORS, L.SECTION_GRAPH, L.SECTION_METADATA, L.SECTION_DATA]
    if signature_size:
        kinds.append(L.SECTION_SIGNATURE)
    head_size = _align(ctypes.sizeof(L.edgeq_header_t) + len(kinds) * ctypes.sizeof(L.edgeq_section_t))
    metadata = json.dumps(graph.metadata, sort_keys=True, separators=(",", ":")).encode()
    graph_bytes = _graph_section(graph)
    # Sizes of strings and tensor table do not depend on where DATA starts: lay out twice.
    strings, table, _ = _records(graph, 0)
    offset = head_size
    placed = {}
    for kind, size in [
        (L.SECTION_STRINGS, len(strings)),
        (L.SECTION_TENSORS, len(table)),
        (L.SECTION_GRAPH, len(graph_bytes)),
        (L.SECTION_METADATA, len(metadata)),
    ]:
        placed[kind] = offset
        offset = _align(offset + size)
    placed[L.SECTION_DATA] = offset
    strings, table, data = _records(graph, offset)
    contents = {
        L.SECTION_STRINGS: strings,
        L.SECTION_TENSORS: table,
        L.SECTION_GRAPH: graph_bytes,
        L.SECTION_METADATA: metadata,
        L.SECTION_DATA: data,
        L.SECTION_SIGNATURE: b"\0" * signature_size,
    }
    if signature_size:
        placed[L.SECTION_SIGNATURE] = _align(offset + len(data))
    end = placed[kinds[-1]] + len(contents[kinds[-1]])
    buf = bytearray(end)
    header = L.edgeq_header_t()
    header.magic = L.MAGIC
    header.version_major = L.VERSION_MAJOR
    header.version_minor = L.VERSION_MINOR
    header.flags = L.FLAG_SIGNED if signature_size else 0
    header.n_sections = len(kinds)
    header.file_size = end
    header.target = graph.target.encode()[:15]
    header.section_table_offset = ctypes.sizeof(L.edgeq_header_t)
    table_at = header.section_table_offset
    for i, kind in enumerate(kinds):
        sec = L.edgeq_section_t()
        sec.kind = kind
        sec.offset = placed[kind]
        sec.size = len(contents[kind])
        sec.crc32 = zlib.crc32(contents[kind]) & 0xFFFFFFFF
        buf[sec.offset : sec.offset + sec.size] = contents[kind]
        at = table_at + i * ctypes.sizeof(L.edgeq_section_t)
        buf[at : at + ctypes.sizeof(sec)] = bytes(sec)
    buf[: ctypes.sizeof(header)] = bytes(header)
    seal(buf)
    return buf


def seal(buf: bytearray) -> None:
    """Recomputes header_crc and file_crc in place (after writing or signing)."""
    header = L.edgeq_header_t.from_buffer_copy(buf[: ctypes.sizeof(L.edgeq_header_t)])
    sig_span = None
    for i in range(header.n_sections):
        at = header.section_table_offset + i * ctypes.sizeof(L.edgeq_section_t)
        sec = L.edgeq_section_t.from_buffer_copy(buf[at : at + ctypes.sizeof(L.edgeq_section_t)])
        if sec.kind == L.SECTION_SIGNATURE:
            sig_span = (sec.offset, sec.offset + sec.size)
    crc_at = L.edgeq_header_t.header_crc.offset
    buf[crc_at : crc_at + 8] = b"\0" * 8
    buf[crc_at : crc_at + 4] = header_crc(buf, header.n_sections).to_bytes(4, "little")
    buf[crc_at + 4 : crc_at + 8] = file_crc(buf, sig_span).to_bytes(4, "little")


def atomic_write(path: str | os.PathLike, data: bytes | bytearray) -> None:
    """Writes via a temp file in the same directory and renames: never a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_blob(graph: Graph, path: str | os.PathLike) -> int:
    """Writes `graph` to `path` atomically; returns the file size."""
    buf = serialize(graph)
    atomic_write(path, buf)
    return len(buf)
