"""atheris harness for the Python parsers of untrusted files (docs/security.md, "Fuzzing").

    python tools/fuzz/fuzz_python.py [libFuzzer flags] CORPUS_DIR [SEED_DIR ...]

The input's first four bytes choose the parser, so one corpus holds all three kinds of seed:
"EDGQ" -> edgeq.blob.read_blob (after the harness recomputes every CRC, so that a mutation reaches
the parser instead of failing a checksum), "GGUF" -> the GGUF importer, anything else -> the .tflite
importer. An EdgeqError (BlobError, ...) is the expected answer to a bad file; any other exception,
a hang (-timeout) or running out of memory (-rss_limit_mb / -malloc_limit_mb) is a bug.

As in the C harness, half of the mutations of a blob are structure-aware: one field of one tensor
record, graph header or op record set to a boundary value; the rest are libFuzzer's byte mutations.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import tempfile
import zlib
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["edgeq"]):
    from edgeq.blob import layout as L
    from edgeq.blob import read_blob
    from edgeq.blob.writer import file_crc, header_crc
    from edgeq.errors import EdgeqError
    from edgeq.importers.gguf_import import from_gguf_file
    from edgeq.importers.tflite_import import from_tflite

HEADER = ctypes.sizeof(L.edgeq_header_t)
SECTION = ctypes.sizeof(L.edgeq_section_t)
CRC_AT = L.edgeq_header_t.header_crc.offset
WORK = Path(".")  # main() points this at a private temp dir (in RAM where /dev/shm exists)


def reseal(data: bytes) -> bytes:
    """The blob with every CRC its section table allows recomputed (sections in bounds only)."""
    buf = bytearray(data)
    if len(buf) < HEADER:
        return data
    header = L.edgeq_header_t.from_buffer_copy(buf[:HEADER])
    n = min(header.n_sections, 16)
    sig_span = None
    for i in range(n):
        at = HEADER + i * SECTION
        if at + SECTION > len(buf):
            return data
        sec = L.edgeq_section_t.from_buffer_copy(buf[at : at + SECTION])
        if sec.offset + sec.size <= len(buf):
            if sec.kind == L.SECTION_SIGNATURE:
                sig_span = (sec.offset, sec.offset + sec.size)
            sec.crc32 = zlib.crc32(buf[sec.offset : sec.offset + sec.size]) & 0xFFFFFFFF
            buf[at : at + SECTION] = bytes(sec)
    buf[CRC_AT : CRC_AT + 8] = bytes(8)
    buf[CRC_AT : CRC_AT + 4] = header_crc(buf, n).to_bytes(4, "little")
    buf[CRC_AT + 4 : CRC_AT + 8] = file_crc(buf, sig_span).to_bytes(4, "little")
    return bytes(buf)


INTERESTING = [0, 1, 2, -1, -2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, -128, -129, 255, 256, 1 << 16,
               1 << 30, (1 << 30) + 1, 0x7FFFFFFF, -0x80000000, 0xFFFFFFFF, 1 << 40, -(1 << 62)]
RECORDS = {L.SECTION_TENSORS: (0, L.edgeq_tensor_t), L.SECTION_GRAPH: (ctypes.sizeof(L.edgeq_graph_t), L.edgeq_op_t)}


def _fields(cls) -> list[tuple[int, int]]:
    """(offset, size) of every scalar and array element of a ctypes record."""
    out = []
    for name, ctype in cls._fields_:
        desc = getattr(cls, name)
        if issubclass(ctype, ctypes.Array):
            item = ctypes.sizeof(ctype._type_)
            out += [(desc.offset + i * item, item) for i in range(ctype._length_)]
        else:
            out.append((desc.offset, desc.size))
    return out


FIELDS = {cls: _fields(cls) for cls in (L.edgeq_tensor_t, L.edgeq_op_t, L.edgeq_graph_t)}


def mutate_record(data: bytes, rng: random.Random) -> bytes | None:
    """One field of a tensor record, op record or the graph header set to a boundary value."""
    if len(data) < HEADER:
        return None
    header = L.edgeq_header_t.from_buffer_copy(data[:HEADER])
    sections = []
    for i in range(min(header.n_sections, 16)):
        at = HEADER + i * SECTION
        if at + SECTION <= len(data):
            sec = L.edgeq_section_t.from_buffer_copy(data[at : at + SECTION])
            if sec.kind in RECORDS and sec.offset + sec.size <= len(data):
                sections.append(sec)
    if not sections:
        return None
    sec = rng.choice(sections)
    first, cls = RECORDS[sec.kind]
    size = ctypes.sizeof(cls)
    n = (sec.size - first) // size
    if sec.kind == L.SECTION_GRAPH and (n <= 0 or rng.random() < 0.25):
        start, cls = sec.offset, L.edgeq_graph_t
        if sec.size < ctypes.sizeof(cls):
            return None
    elif n > 0:
        start = sec.offset + first + rng.randrange(n) * size
    else:
        return None
    at, width = rng.choice(FIELDS[cls])
    value = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
    buf = bytearray(data)
    buf[start + at : start + at + width] = value.to_bytes(width, "little")
    return bytes(buf)


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data[:4] == L.MAGIC and rng.random() < 0.5:
        mutated = mutate_record(data, rng)
        if mutated is not None:
            return mutated
    return atheris.Mutate(data, max_size)


def parse(data: bytes) -> None:
    """Runs the parser the magic selects; lets anything but EdgeqError escape."""
    if data[:4] == L.MAGIC:
        path, data, read = WORK / "input.edgeq", reseal(data), read_blob
    elif data[:4] == b"GGUF":
        path, read = WORK / "input.gguf", from_gguf_file
    else:
        path, read = WORK / "input.tflite", from_tflite
    path.write_bytes(data)
    try:
        read(path)
    except EdgeqError:
        pass


def main() -> None:
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="edgeq-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    atheris.Setup(sys.argv, lambda data: parse(bytes(data)), custom_mutator=mutate)
    try:
        atheris.Fuzz()
    finally:
        for p in WORK.iterdir():
            p.unlink()
        WORK.rmdir()


if __name__ == "__main__":
    main()
