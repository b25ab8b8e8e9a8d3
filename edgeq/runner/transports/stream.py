"""Byte streams for microcontrollers, which have no files or processes: pyserial URLs underneath.

`serial:///dev/ttyACM0?baud=115200` (a local port), `socket://HOST:PORT` (e.g. an emulated board's
UART), `rfc2217://HOST:PORT` (a network serial server) and `loop://` (a loopback, for tests).
The framed MCU protocol is built on top of this, elsewhere.
"""

from __future__ import annotations

import socket
from typing import Self
from urllib.parse import parse_qsl, urlsplit

import serial

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import DeviceTimeout

STREAM_SCHEMES = frozenset({"serial", "socket", "rfc2217", "loop"})


class Stream:
    """A serial port-like byte pipe with timeouts whose failures are DeviceError naming the URL."""

    def __init__(self, url: str, port: serial.SerialBase):
        self.url = url
        self.port = port

    @property
    def timeout(self) -> float | None:
        """Seconds a read() may wait in total (pyserial semantics); writes use write_timeout."""
        return self.port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.port.timeout = value

    def write(self, data: bytes) -> None:
        """Writes everything or raises: a stuck peer must not hang the host."""
        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialTimeoutException:
            raise DeviceTimeout(f"{self.url}: write timed out (the device is not reading)") from None
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"{self.url}: write failed: {e}") from None

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; fewer (maybe none) when the timeout passes first."""
        try:
            return self.port.read(size)
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"{self.url}: read failed: {e}") from None

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes, or DeviceTimeout when the device stays silent."""
        data = self.read(size)
        if len(data) < size:
            raise DeviceTimeout(f"{self.url}: timed out after {self.timeout:g} s waiting for {size} bytes "
                                f"(got {len(data)})")
        return data

    def reset_input_buffer(self) -> None:
        """Drops stale bytes, e.g. a boot banner, before a request."""
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stream(url: str, baudrate: int = 115200, *, timeout: float = 1.0,
                write_timeout: float | None = None) -> Stream:
    """Opens a byte stream; `?baud=N` in a serial:// URL overrides `baudrate`."""
    parts = urlsplit(url)
    write_timeout = timeout if write_timeout is None else write_timeout
    try:
        if parts.scheme == "serial":
            if parts.netloc or not parts.path:
                raise DeviceError(f"{url}: expected serial:///dev/PORT[?baud=N]")
            options = dict(parse_qsl(parts.query, strict_parsing=bool(parts.query)))
            unknown = sorted(set(options) - {"baud"})
            if unknown:
                raise DeviceError(f"{url}: unknown option {unknown[0]!r} for serial:// (known: baud)")
            baud = int(options.get("baud", baudrate))
            port = serial.Serial(parts.path, baud, timeout=timeout, write_timeout=write_timeout)
        elif parts.scheme in STREAM_SCHEMES:
            port = serial.serial_for_url(url, baudrate, timeout=timeout, write_timeout=write_timeout)
            if parts.scheme in ("socket", "rfc2217"):  # small request/reply frames: no Nagle delay
                port._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            known = ", ".join(f"{s}://" for s in sorted(STREAM_SCHEMES))
            raise DeviceError(f"{url}: not a byte-stream URL (use one of {known})")
    except ValueError as e:
        raise DeviceError(f"{url}: malformed URL ({e})") from None
    except (serial.SerialException, OSError) as e:
        raise DeviceError(f"{url}: cannot open: {e}") from None
    return Stream(url, port)
