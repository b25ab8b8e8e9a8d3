"""`qemu-system://MACHINE`: boots a Cortex-M firmware image in qemu-system-arm and connects to its UART.

The UART is a TCP server on a free 127.0.0.1 port (`-serial tcp:...,server=on,wait=on`: the guest does
not start until we are connected, so nothing it sends is lost) and is reached as pyserial's
`socket://`. `-icount shift=N` makes virtual time advance 2^N ns per executed instruction, so the
firmware's SysTick counts are deterministic and instruction-derived (emulated, not the board's).
The emulator is always killed (with its process group) on close, on errors and on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import kill_group
from edgeq.runner.transports.stream import Stream, open_stream

log = logging.getLogger(__name__)
MACHINES = ("mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547")
QEMU = "qemu-system-arm"


def free_port() -> int:
    """A TCP port nobody listens on right now (qemu may still lose a race for it: start() retries)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_url(url: str) -> str:
    """The machine of a qemu-system:// URL, checked against the machines the firmware supports."""
    parts = urlsplit(url)
    machine = parts.netloc or parts.path.strip("/")
    if parts.scheme != "qemu-system" or not machine:
        raise DeviceError(f"{url}: expected qemu-system://MACHINE ({', '.join(MACHINES)})")
    if machine not in MACHINES:
        raise DeviceError(f"{url}: unknown machine {machine!r} (known: {', '.join(MACHINES)})")
    return machine


class QemuSystemBoard:
    """An emulated board running `firmware` with its UART0 on `self.stream`."""

    def __init__(self, url: str, firmware: str | Path, *, icount_shift: int = 0, boot_timeout: float = 20.0,
                 attempts: int = 3, extra_args: list[str] | None = None):
        self.url = url
        self.machine = parse_url(url)
        self.firmware = Path(firmware)
        self.icount_shift = icount_shift
        self.boot_timeout = boot_timeout
        self.attempts = attempts
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.stream: Stream | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - qemu's output, kept as long as the board

    def argv(self, port: int) -> list[str]:
        return [QEMU, "-M", self.machine, "-nographic", "-monitor", "none",
                "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-icount", f"shift={self.icount_shift}",
                "-kernel", str(self.firmware), *self.extra_args]

    def start(self, connect: bool = True) -> Self:
        """Starts the emulator and connects; retries on a lost port race, then gives up with qemu's words.

        With connect=False the emulator is only started (its guest waits for the first connection to
        `self.port`), e.g. for a proxy that sits between it and the client."""
        if shutil.which(QEMU) is None:
            raise DeviceError(f"{self.url}: {QEMU} not found (apt-get install qemu-system-arm, or tools/bootstrap.sh)")
        if not self.firmware.is_file():
            raise DeviceError(f"{self.url}: firmware image {self.firmware} not found")
        reason = "no attempt made"
        for _ in range(self.attempts):
            self.port = free_port()
            self._log.seek(0)
            self._log.truncate()
            self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            if not connect:
                time.sleep(0.2)
                if self.proc.poll() is None:
                    return self
            reason = self._connect()
            if reason is None:
                return self
            self._stop()
        raise DeviceError(f"{self.url}: emulator did not start: {reason}")

    def _connect(self) -> str | None:
        """None once connected, else why not (qemu exited, or its port never opened)."""
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                text = self._log.read().decode(errors="replace").strip().splitlines()
                return f"{QEMU} exited with {self.proc.returncode}: {text[-1] if text else 'no output'}"
            try:
                self.stream = open_stream(f"socket://127.0.0.1:{self.port}", timeout=1.0)
                return None
            except DeviceError:
                time.sleep(0.05)
        return f"port {self.port} did not open within {self.boot_timeout:g} s"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.close()
            except Exception as e:  # noqa: BLE001 - closing a dead socket must not hide the real error
                log.debug("closing %s: %s", self.url, e)
            self.stream = None
        if self.proc is not None:
            kill_group(self.proc.pid)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self._stop()
        self._log.close()

    def describe(self) -> dict:
        return {"scheme": "qemu-system", "host": "localhost", "emulated": True, "url": self.url,
                "machine": self.machine, "icount_shift": self.icount_shift, "uart": f"socket://127.0.0.1:{self.port}"}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
