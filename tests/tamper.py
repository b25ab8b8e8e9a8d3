"""Tampering a blob so that only its signature can tell: flip a bit, then recompute every CRC
(shared by tests/test_signing.py and the MCU's signed-deploy test)."""

from __future__ import annotations

import ctypes
import zlib

from edgeq.blob import layout as L
from edgeq.blob.writer import file_crc, header_crc

HEADER = ctypes.sizeof(L.edgeq_header_t)
SECTION = ctypes.sizeof(L.edgeq_section_t)


def restamp(buf: bytearray) -> bytearray:
    """Recomputes every CRC (each section's, header_crc, file_crc) after a tamper, so that a changed bit can
    only be caught by the signature or a structural check. Bounded: a tampered table may point anywhere."""
    header = L.edgeq_header_t.from_buffer_copy(buf[:HEADER])
    sig_span = None
    for i in range(min(header.n_sections, 16, (len(buf) - HEADER) // SECTION)):
        at = HEADER + i * SECTION
        sec = L.edgeq_section_t.from_buffer_copy(buf[at : at + SECTION])
        if sec.offset + sec.size <= len(buf):
            sec.crc32 = zlib.crc32(buf[sec.offset : sec.offset + sec.size]) & 0xFFFFFFFF
            buf[at : at + SECTION] = bytes(sec)
            if sec.kind == L.SECTION_SIGNATURE:
                sig_span = (sec.offset, sec.offset + sec.size)
    crc_at = L.edgeq_header_t.header_crc.offset
    buf[crc_at : crc_at + 4] = header_crc(buf, min(header.n_sections, 16)).to_bytes(4, "little")
    buf[crc_at + 4 : crc_at + 8] = file_crc(buf, sig_span).to_bytes(4, "little")
    return buf


def sections(buf: bytes) -> list[L.edgeq_section_t]:
    header = L.edgeq_header_t.from_buffer_copy(buf[:HEADER])
    return [L.edgeq_section_t.from_buffer_copy(buf[HEADER + i * SECTION :][:SECTION]) for i in range(header.n_sections)]


def tampered(buf: bytes, at: int, bit: int) -> bytes:
    data = bytearray(buf)
    data[at] ^= 1 << bit
    return bytes(restamp(data))
