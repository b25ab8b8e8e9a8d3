"""A TEST DOUBLE for an Android device's adbd, speaking the ADB wire protocol on 127.0.0.1.

No adbd or Android emulator can run on this machine, so the adb transport is tested against this
stand-in: the real Debian `adb` client and server reach it with `adb connect 127.0.0.1:PORT` and
then list, shell, push and pull as they would with a phone. It is not part of edgeq.

Implemented from AOSP's adb/protocol.txt, SYNC.TXT and shell_protocol.h, just far enough:
- transport: CNXN (no AUTH, no TLS), OPEN / OKAY / WRTE / CLSE with one WRTE in flight per stream;
- `shell:CMD` and `shell,v2[,...]:CMD`: CMD runs under /bin/sh on THIS host with the sandbox
  directory as cwd, in a new session like adbd's child; shell protocol v2 carries stdout,
  stderr and the exit status; a stream closed by the host SIGHUPs the shell, as adbd does;
- `sync:` (v1): STAT, LIST, SEND, RECV, DONE, QUIT; paths must lie inside the sandbox.
Fault injection: `vanish_after_push_bytes=N` makes the device disappear (sockets dropped, no
goodbye) once a push has delivered N bytes, like a cable pulled mid-transfer.
This is no security boundary: shell commands can touch the whole host.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import stat
import struct
import subprocess
import threading
from pathlib import Path
from typing import Self

A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE = (int.from_bytes(c, "little") for c in
                                          (b"CNXN", b"OPEN", b"OKAY", b"CLSE", b"WRTE"))
VERSION = 0x01000001  # skips checksums on receipt; we still send correct ones
MAX_PAYLOAD = 256 * 1024
SYNC_DATA_MAX = 64 * 1024
BANNER = b"device::ro.product.name=edgeq_fake;ro.product.model=edgeq_fake_adbd;" \
         b"ro.product.device=edgeq_fake;features=shell_v2,cmd"
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN = range(5)
ACK_TIMEOUT_S = 30.0


def message(cmd: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    """One ADB transport message: 24-byte header (checksum = byte sum, magic = ~cmd) + payload."""
    return struct.pack("<6I", cmd, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, cmd ^ 0xFFFFFFFF) + data


class _Closed(Exception):
    """The host (or the vanished device) closed the stream."""


class _Stream:
    """One OPENed service: bytes in from WRTE, bytes out as WRTE waiting for each OKAY."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.buffer = b""
        self.acked = threading.Event()
        self.write_lock = threading.Lock()
        self.closed = False

    def write(self, data: bytes) -> None:
        with self.write_lock:
            for i in range(0, len(data), self.conn.max_payload):
                if self.closed:
                    raise _Closed()
                self.acked.clear()
                self.conn.send(A_WRTE, self.local_id, self.remote_id, data[i:i + self.conn.max_payload])
                if not self.acked.wait(ACK_TIMEOUT_S) or self.closed:
                    raise _Closed()

    def _next_chunk(self) -> bytes:
        data = self.inbox.get()
        if data is None:
            self.inbox.put(None)  # stay closed for later readers
            raise _Closed()
        return data

    def read_some(self) -> bytes:
        data, self.buffer = self.buffer or self._next_chunk(), b""
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._next_chunk()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def on_host_close(self) -> None:
        self.closed = True
        self.acked.set()
        self.inbox.put(None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.send(A_CLSE, self.local_id, self.remote_id)
        self.conn.streams.pop(self.local_id, None)


class _Connection:
    """One TCP connection from the adb server = one transport to this device."""

    def __init__(self, device: FakeAdbDevice, sock: socket.socket):
        self.device, self.sock = device, sock
        self.send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.max_payload = MAX_PAYLOAD
        self.next_id = 1

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self.send_lock:
            self.sock.sendall(message(cmd, arg0, arg1, data))

    def recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("host went away")
            data += chunk
        return data

    def serve(self) -> None:
        try:
            while True:
                cmd, arg0, arg1, length, _, _ = struct.unpack("<6I", self.recv_exact(24))
                self.dispatch(cmd, arg0, arg1, self.recv_exact(length) if length else b"")
        except OSError:
            pass
        finally:
            for stream in list(self.streams.values()):
                stream.on_host_close()
            self.sock.close()

    def dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = min(arg1, MAX_PAYLOAD)
            self.send(A_CNXN, VERSION, MAX_PAYLOAD, BANNER)
        elif cmd == A_OPEN:
            service = data.rstrip(b"\0").decode()
            handler = self.device.handler(service)
            if handler is None:
                self.send(A_CLSE, 0, arg0)  # refuses the service
                return
            stream = _Stream(self, self.next_id, arg0)
            self.next_id += 1
            self.streams[stream.local_id] = stream
            self.send(A_OKAY, stream.local_id, arg0)
            threading.Thread(target=self.device.run_service, args=(handler, stream), daemon=True).start()
        elif (stream := self.streams.get(arg1)) is not None:
            if cmd == A_WRTE:
                stream.inbox.put(data)
                self.send(A_OKAY, arg1, arg0)
            elif cmd == A_OKAY:
                stream.acked.set()
            elif cmd == A_CLSE:
                self.streams.pop(arg1, None)
                stream.on_host_close()


class FakeAdbDevice:
    """Listens on 127.0.0.1:PORT like `adbd` in TCP mode; use as a context manager."""

    def __init__(self, sandbox: Path, *, vanish_after_push_bytes: int | None = None):
        self.sandbox = Path(sandbox).resolve()
        self.vanish_after_push_bytes = vanish_after_push_bytes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.serial = f"127.0.0.1:{self.port}"
        self.conns: list[_Connection] = []
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self.vanished = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.vanish()
        self.thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = _Connection(self, sock)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def vanish(self) -> None:
        """Drops off the network at once and ends whatever it was running."""
        self.vanished.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            for proc in list(self.procs):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # -- services -------------------------------------------------------------------------------
    def handler(self, service: str):
        if service.startswith("shell") and ":" in service:
            head, cmd = service.split(":", 1)
            if head == "shell" or head.startswith("shell,"):
                return lambda stream: self.shell(stream, head.split(",")[1:], cmd)
        if service == "sync:":
            return self.sync
        return None

    def run_service(self, handler, stream: _Stream) -> None:
        try:
            handler(stream)
        except (_Closed, OSError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def shell(self, stream: _Stream, args: list[str], cmd: str) -> None:
        v2 = "v2" in args
        proc = subprocess.Popen(["/bin/sh", "-c", cmd], cwd=self.sandbox,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE if v2 else subprocess.STDOUT, start_new_session=True)
        with self.lock:
            self.procs.add(proc)

        def pump(pipe, packet_id: int) -> None:
            try:
                while chunk := pipe.read1(SYNC_DATA_MAX):
                    stream.write(struct.pack("<BI", packet_id, len(chunk)) + chunk if v2 else chunk)
            except (_Closed, OSError):
                pass

        pumps = [threading.Thread(target=pump, args=(proc.stdout, SHELL_STDOUT), daemon=True)]
        if v2:
            pumps.append(threading.Thread(target=pump, args=(proc.stderr, SHELL_STDERR), daemon=True))
        for t in pumps:
            t.start()
        threading.Thread(target=self._feed_stdin, args=(stream, proc, v2), daemon=True).start()
        for t in pumps:
            t.join()
        code = proc.wait()
        with self.lock:
            self.procs.discard(proc)
        if v2:
            stream.write(struct.pack("<BIB", SHELL_EXIT, 1, code if code >= 0 else 128 - code))

    @staticmethod
    def _feed_stdin(stream: _Stream, proc: subprocess.Popen[bytes], v2: bool) -> None:
        """Host -> command; when the host hangs up, SIGHUP the shell the way adbd does."""
        try:
            while True:
                if v2:
                    packet_id, length = struct.unpack("<BI", stream.read_exact(5))
                    data = stream.read_exact(length)
                else:
                    packet_id, data = SHELL_STDIN, stream.read_some()
                if packet_id == SHELL_STDIN:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                elif packet_id == SHELL_CLOSE_STDIN:
                    proc.stdin.close()
        except _Closed:
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)
        except (OSError, ValueError):  # the command closed its stdin, or we did
            pass

    def confined(self, path: str) -> Path:
        real = Path(os.path.realpath(path))
        if real != self.sandbox and self.sandbox not in real.parents:
            raise PermissionError(f"{path}: outside the fake device's sandbox")
        return real

    def sync(self, stream: _Stream) -> None:
        def reply(tag: bytes, *values: int, data: bytes = b"") -> None:
            stream.write(tag + struct.pack(f"<{len(values)}I", *values) + data)

        def fail(text: str) -> None:
            reply(b"FAIL", len(text.encode()), data=text.encode())

        while True:
            tag, length = struct.unpack("<4sI", stream.read_exact(8))
            if tag == b"QUIT":
                return
            path = stream.read_exact(length).decode()
            try:
                if tag == b"STAT":
                    try:
                        st = os.lstat(self.confined(path))
                        reply(b"STAT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
                    except OSError:
                        reply(b"STAT", 0, 0, 0)
                elif tag == b"LIST":
                    for entry in os.scandir(self.confined(path)):
                        st = entry.stat(follow_symlinks=False)
                        name = entry.name.encode()
                        reply(b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(name),
                              data=name)
                    reply(b"DONE", 0, 0, 0, 0)
                elif tag == b"SEND":
                    target, mode = path.rsplit(",", 1)
                    if not self.receive_file(stream, self.confined(target), int(mode)):
                        return
                    reply(b"OKAY", 0)
                elif tag == b"RECV":
                    with open(self.confined(path), "rb") as f:
                        while chunk := f.read(SYNC_DATA_MAX):
                            reply(b"DATA", len(chunk), data=chunk)
                    reply(b"DONE", 0)
                else:
                    fail(f"unknown sync request {tag!r}")
                    return
            except OSError as e:
                fail(f"{path}: {e.strerror or e}")
                if tag == b"SEND":
                    return  # its DATA chunks are still in flight: end the session like adbd

    def receive_file(self, stream: _Stream, target: Path, mode: int) -> bool:
        """SEND body: DATA chunks then DONE. False if the device vanished on purpose mid-way."""
        received = 0
        target.unlink(missing_ok=True)
        with open(target, "wb") as f:
            while True:
                tag, length = struct.unpack("<4sI", stream.read_exact(8))
                if tag == b"DONE":
                    break
                if tag != b"DATA":
                    raise OSError(f"protocol error: {tag!r} in SEND")
                f.write(stream.read_exact(length))
                received += length
                if self.vanish_after_push_bytes is not None and received >= self.vanish_after_push_bytes:
                    f.flush()
                    self.vanish()
                    return False
        os.chmod(target, stat.S_IMODE(mode))
        return True
