"""Host side of the edgeq serial protocol (docs/protocol.md; the device side is runtimes/firmware/protocol.c).

Every request is one COBS frame `type | seq | length | payload | crc32` between 0x00 delimiters and gets
one reply with the same seq. The client resends a request when the reply is late, damaged, or a
frame-level ERROR says the request arrived damaged; the device answers a repeated request from its
reply cache, and every request is idempotent (chunks carry their offset), so resending is always safe.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from cobs import cobs

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import DeviceTimeout
from edgeq.runner.transports.stream import Stream

VERSION = 1
MAX_PAYLOAD = 256
MAX_RUNS = 32
HEADER = struct.Struct("<BBH")

HELLO, LOAD_BEGIN, LOAD_CHUNK, VERIFY, INPUT, RUN, READ_OUTPUT, PROFILE = range(1, 9)
INFO, LOAD_STATUS, VERIFIED, INPUT_STATUS, RESULT, OUTPUT, LAYERS = 0x81, 0x82, 0x84, 0x85, 0x86, 0x87, 0x88
ERROR = 0xE0
REPLY_TO = {HELLO: INFO, LOAD_BEGIN: LOAD_STATUS, LOAD_CHUNK: LOAD_STATUS, VERIFY: VERIFIED, INPUT: INPUT_STATUS,
            RUN: RESULT, READ_OUTPUT: OUTPUT, PROFILE: LAYERS}
FRAME_ERRORS = range(1, 16)  # the device got a damaged frame: resend
E_RUNTIME = 22
ERROR_NAMES = {1: "FRAME_CRC", 2: "FRAME_LENGTH", 3: "FRAME_OVERFLOW", 4: "FRAME_COBS", 16: "UNKNOWN_TYPE",
               17: "BAD_REQUEST", 18: "STATE", 19: "RANGE", 20: "TOO_LARGE", 21: "VERIFY", 22: "RUNTIME"}
SOURCE_UPLOADED, SOURCE_LINKED = 0, 1
RUN_FROM_INPUT, RUN_FROM_BUNDLED = 0, 1
DEFAULT_CHUNK = 128  # payload bytes per LOAD_CHUNK: at 0.4 % byte loss a 144-byte frame still gets through ~56 %
IDLE_S = 0.02  # a reply whose closing delimiter was lost is taken as ended after this much silence


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """0x00, COBS(header + payload + crc32), 0x00: the leading zero ends any garbage before it."""
    if len(payload) > 0xFFFF:
        raise ValueError("payload longer than the length field")
    body = HEADER.pack(ftype, seq & 0xFF, len(payload)) + payload
    return b"\0" + cobs.encode(body + struct.pack("<I", zlib.crc32(body))) + b"\0"


def decode_frame(encoded: bytes) -> tuple[int, int, bytes] | None:
    """(type, seq, payload) of one frame between delimiters, or None when it is damaged."""
    try:
        body = cobs.decode(encoded)
    except cobs.DecodeError:
        return None
    if len(body) < HEADER.size + 4:
        return None
    ftype, seq, length = HEADER.unpack_from(body)
    if length != len(body) - HEADER.size - 4 or struct.unpack_from("<I", body, len(body) - 4)[0] != zlib.crc32(
            body[:-4]):
        return None
    return ftype, seq, body[HEADER.size:-4]


class ProtocolError(DeviceError):
    """The device answered with an ERROR frame about the request itself (not about a damaged frame)."""

    def __init__(self, message: str, code: int, status: int):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Info:
    protocol: int
    abi: int
    flags: int
    max_payload: int
    max_runs: int
    core_hz: int
    ticks_per_second: int
    upload_capacity: int
    static_arena: int
    linked_blob: int
    flash_size: int
    flash_used: int
    ram_size: int
    ram_used: int
    runs_done: int
    runs_refused: int
    core: str
    version: str

    @property
    def signature_required(self) -> bool:
        return bool(self.flags & 0x04)


@dataclass(frozen=True)
class Verified:
    blob_size: int
    crc: int
    arena_bytes: int
    arena_available: int
    inputs: int
    outputs: int
    layers: int
    max_batch: int
    input_bytes: int
    output_bytes: int
    bundled_tests: int
    kernel_tier: str


@dataclass(frozen=True)
class Result:
    batch: int
    blob_crc: int  # CRC of the verified blob the device ran
    ticks: list[int]


@dataclass(frozen=True)
class Layer:
    index: int
    op: int
    kernel: str
    ticks: int


@dataclass
class LinkStats:
    """What the link cost: resends by cause (for the soak benchmark and the report)."""

    requests: int = 0
    resends: int = 0
    timeouts: int = 0
    damaged_replies: int = 0
    frame_errors: int = 0
    stale_replies: int = 0


class Client:
    """One device on a byte stream. `timeout` bounds each reply; `retries` resends per request."""

    def __init__(self, stream: Stream, *, timeout: float = 0.5, retries: int = 40,
                 chunk: int = DEFAULT_CHUNK):
        if not 1 <= chunk <= MAX_PAYLOAD - 4:
            raise ValueError(f"chunk must be 1..{MAX_PAYLOAD - 4} bytes")
        self.stream = stream
        self.timeout = timeout
        self.retries = retries
        self.chunk = chunk
        self.stats = LinkStats()
        self._seq = 0
        self._buf = bytearray()
        stream.timeout = IDLE_S

    # -- framing ---------------------------------------------------------------------------------
    def _next_frame(self, deadline: float) -> tuple[int, int, bytes] | None | bool:
        """The next frame: decoded, False if damaged, None at the deadline."""
        while True:
            end = self._buf.find(0)
            if end >= 0:
                raw = bytes(self._buf[:end])
                del self._buf[:end + 1]
                if raw:
                    return decode_frame(raw) or False
                continue
            if time.monotonic() >= deadline:
                return None
            data = self.stream.read(max(1, self.stream.port.in_waiting))
            if data:
                self._buf += data
            elif self._buf:  # silence after a partial frame: its delimiter was lost
                raw = bytes(self._buf)
                self._buf.clear()
                return decode_frame(raw) or False

    def request(self, ftype: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Sends one request until its reply arrives intact; returns the reply's payload."""
        self._seq = self._seq % 255 + 1  # 1..255: seq 0 is the device's own (frame errors, faults)
        seq = self._seq
        frame = encode_frame(ftype, seq, payload)
        self.stats.requests += 1
        wait = self.timeout if timeout is None else timeout
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.resends += 1
            self.stream.write(frame)
            deadline = time.monotonic() + wait
            while True:
                got = self._next_frame(deadline)
                if got is None:
                    self.stats.timeouts += 1
                    break
                if got is False:
                    self.stats.damaged_replies += 1
                    break
                rtype, rseq, body = got
                if rtype == ERROR and len(body) >= 4:
                    code, status = struct.unpack_from("<HH", body)
                    if code in FRAME_ERRORS:
                        self.stats.frame_errors += 1
                        break
                    if rseq == 0 and code == E_RUNTIME:  # a fault handler ran: the device is stuck until reset
                        raise DeviceError(f"{self.stream.url}: the device faulted "
                                          f"({body[4:].decode(errors='replace')}) during {_NAMES[ftype]}")
                    if rseq == seq:
                        name = ERROR_NAMES.get(code, str(code))
                        raise ProtocolError(f"{self.stream.url}: device refused {_NAMES[ftype]} ({name}): "
                                            f"{body[4:].decode(errors='replace')}", code, status)
                if rseq != seq or rtype != REPLY_TO[ftype]:
                    self.stats.stale_replies += 1  # a late answer to an earlier (re)send
                    continue
                return body
        raise DeviceTimeout(f"{self.stream.url}: no intact reply to {_NAMES[ftype]} after {self.retries + 1} "
                            f"attempts of {wait:g} s")

    # -- requests --------------------------------------------------------------------------------
    def hello(self) -> Info:
        p = self.request(HELLO)
        fixed = struct.unpack_from("<BBBxHHIIIIIIIIIIIBB", p)
        nc, nv = fixed[-2], fixed[-1]
        text = p[56:56 + nc + nv].decode(errors="replace")
        return Info(*fixed[:-2], core=text[:nc], version=text[nc:])

    def load(self, blob: bytes, progress: Callable[[int, int], None] | None = None) -> None:
        """Uploads into the device's RAM; resumes an interrupted upload of the same blob."""
        size, crc = len(blob), zlib.crc32(blob)
        received, _ = struct.unpack("<II", self.request(LOAD_BEGIN, struct.pack("<II", size, crc)))
        while received < size:
            piece = blob[received:received + self.chunk]
            got, _ = struct.unpack("<II", self.request(LOAD_CHUNK, struct.pack("<I", received) + piece))
            if got < received:
                raise DeviceError(f"{self.stream.url}: device lost the upload (at {got} of {size} bytes)")
            received = got
            if progress:
                progress(received, size)

    def verify(self, crc: int, source: int = SOURCE_UPLOADED, max_batch: int = 1) -> Verified:
        p = self.request(VERIFY, struct.pack("<BxHI", source, max_batch, crc), timeout=max(self.timeout, 5.0))
        fixed = struct.unpack_from("<IIIIHHHHIIIB", p)
        return Verified(*fixed[:-1], kernel_tier=p[37:37 + fixed[-1]].decode(errors="replace"))

    def write_input(self, data: bytes) -> None:
        step = MAX_PAYLOAD - 4
        for off in range(0, len(data), step):
            self.request(INPUT, struct.pack("<I", off) + data[off:off + step])

    def run(self, batch: int = 1, runs: int = 1, source: int = RUN_FROM_BUNDLED, first: int = 0,
            timeout: float = 10.0) -> Result:
        p = self.request(RUN, struct.pack("<HHBxxxI", batch, runs, source, first), timeout=timeout)
        b, n, crc = struct.unpack_from("<HHI", p)
        return Result(b, crc, list(struct.unpack_from(f"<{n}I", p, 8)))

    def read_output(self, index: int, nbytes: int) -> bytes:
        out = bytearray()
        step = MAX_PAYLOAD - 4
        while len(out) < nbytes:
            n = min(step, nbytes - len(out))
            p = self.request(READ_OUTPUT, struct.pack("<BxHI", index, n, len(out)))
            if struct.unpack_from("<I", p)[0] != len(out) or len(p) - 4 != n:
                raise DeviceError(f"{self.stream.url}: OUTPUT reply for the wrong bytes")
            out += p[4:]
        return bytes(out)

    def profile(self) -> list[Layer]:
        layers: list[Layer] = []
        while True:
            p = self.request(PROFILE, struct.pack("<H", len(layers)))
            first, count = struct.unpack_from("<HH", p)
            off = 4
            for i in range(count):
                op, kn, ticks = struct.unpack_from("<HBxI", p, off)
                layers.append(Layer(first + i, op, p[off + 8:off + 8 + kn].decode(errors="replace"), ticks))
                off += 8 + kn
            if count == 0:
                return layers


_NAMES = {HELLO: "HELLO", LOAD_BEGIN: "LOAD_BEGIN", LOAD_CHUNK: "LOAD_CHUNK", VERIFY: "VERIFY", INPUT: "INPUT",
          RUN: "RUN", READ_OUTPUT: "READ_OUTPUT", PROFILE: "PROFILE"}
