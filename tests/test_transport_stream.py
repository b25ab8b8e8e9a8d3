"""Byte streams for microcontrollers: pyserial's loop://, a loopback TCP peer, and a real pty."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from edgeq.errors import DeviceError
from edgeq.runner.transports import DeviceTimeout, open_stream


class Peer:
    """A one-connection TCP peer on 127.0.0.1: echoes, stays silent, or hangs up."""

    def __init__(self, mode: str):
        self.mode = mode
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            if self.mode == "echo":
                while data := conn.recv(4096):
                    conn.sendall(data)
            elif self.mode == "silent":
                self.done.wait(10)
            # "hangup": close at once

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def peer(request):
    p = Peer(request.param)
    yield p
    p.close()


def test_loop_roundtrip():
    with open_stream("loop://", timeout=0.5) as s:
        s.write(b"\x7ehello")
        assert s.read_exact(6) == b"\x7ehello"
        assert s.read(10) == b""  # nothing left: returns at the timeout with what it has
        s.timeout = 0.1
        s.write(b"stale boot banner")
        time.sleep(0.05)
        s.reset_input_buffer()
        with pytest.raises(DeviceTimeout, match="timed out after 0.1 s"):
            s.read_exact(1)


@pytest.mark.parametrize("peer", ["echo"], indirect=True)
def test_socket_roundtrip(peer):
    with open_stream(f"socket://127.0.0.1:{peer.port}", timeout=2) as s:
        payload = bytes(range(256)) * 64
        s.write(payload)
        assert s.read_exact(len(payload)) == payload


@pytest.mark.parametrize("peer", ["silent"], indirect=True)
def test_silent_peer_times_out(peer):
    with open_stream(f"socket://127.0.0.1:{peer.port}", timeout=0.3) as s:
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match=r"timed out after 0.3 s waiting for 4 bytes \(got 0\)") as e:
            s.read_exact(4)
        assert 0.25 < time.monotonic() - t0 < 2
        assert str(e.value).startswith("socket://127.0.0.1:") and e.value.exit_code == 3


@pytest.mark.parametrize("peer", ["hangup"], indirect=True)
def test_peer_hangup_is_a_device_error(peer):
    with open_stream(f"socket://127.0.0.1:{peer.port}", timeout=2) as s:
        peer.thread.join(5)
        with pytest.raises(DeviceError, match="read failed"):
            s.read(1)


def test_refused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connecting is refused
        with pytest.raises(DeviceError, match=rf"^socket://127.0.0.1:{port}: cannot open"):
            open_stream(f"socket://127.0.0.1:{port}")


def test_serial_url_on_a_pty():
    """serial:///dev/pts/N?baud=N opens a real tty through pyserial; the pty master plays the MCU."""
    master, slave = os.openpty()
    try:
        with open_stream(f"serial://{os.ttyname(slave)}?baud=9600", timeout=1) as s:
            assert s.port.baudrate == 9600
            s.write(b"PING")
            assert os.read(master, 4) == b"PING"
            os.write(master, b"PONG")
            assert s.read_exact(4) == b"PONG"
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(("url", "message"), [
    ("serial:///dev/edgeq-no-such-port", "cannot open"),
    ("serial://ttyS0", "expected serial:///dev/PORT"),
    ("serial:///dev/ttyS0?parity=odd", "unknown option 'parity'"),
    ("serial:///dev/ttyS0?baud=fast", "malformed URL"),
    ("ssh://host", "not a byte-stream URL"),
])
def test_bad_stream_urls(url, message):
    with pytest.raises(DeviceError, match=message) as e:
        open_stream(url)
    assert str(e.value).startswith(f"{url}: ")
