"""`adb://[serial]` and `adb://host:port` through the real `adb` client (Android, or Linux boards with adbd).

`adb://` alone means the only attached device; `adb://SERIAL` picks one; `adb://HOST:PORT` runs
`adb connect` first and `adb disconnect` on close (only if this transport made the connection).
The adb server is whatever `adb` uses: ANDROID_ADB_SERVER_PORT selects a private one.
Commands need the device's shell protocol v2 (Android >= 7) for separate stderr; exit statuses
come from the marker line either way. Option: `tmpdir=DIR` (default /data/local/tmp).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from edgeq.runner.transports.base import DeviceTimeout, ProcessTimeout, last_line, run_process, temp_name
from edgeq.runner.transports.remote import RemoteShellTransport, file_mode

ONLINE_WAIT_S = 10.0  # how long a just-connected device may stay "offline" before we give up


def adb_reason(out: bytes, err: bytes) -> str:
    """adb prints some errors on stdout (beside progress lines): prefer the line that says error."""
    lines = (err + b"\n" + out).decode(errors="replace").splitlines()
    errors = [ln.strip() for ln in lines if "error" in ln or "failed" in ln]
    return errors[0] if errors else last_line(err + b"\n" + out)


class AdbTransport(RemoteShellTransport):
    scheme = "adb"
    options = frozenset({"tmpdir"})
    default_tmpdir = "/data/local/tmp"
    _connected_by_us = False
    serial = ""

    def _open(self) -> None:
        parts = self.parts
        if parts.path.strip("/") or parts.username or parts.password:
            raise self.error("expected adb://, adb://SERIAL or adb://HOST:PORT")
        adb = shutil.which("adb")
        if adb is None:
            raise self.error("the `adb` client is not installed (Debian: apt-get install adb)")
        self.adb = adb
        if parts.port is not None:
            self.serial = parts.netloc
            self.connect()
        elif parts.netloc:
            self.serial = parts.netloc
        else:
            self.serial = self.only_device()
        self.host = self.serial
        self.wait_online()
        self.make_workdir()

    def client(self, *args: str, what: str, device: bool = True) -> tuple[int, bytes, bytes]:
        """Runs one adb client command, aimed at our device unless it is a host command."""
        target = ["-s", self.serial] if device else []
        try:
            rc, out, err, _ = run_process([self.adb, *target, *args], self.timeout)
        except ProcessTimeout:
            raise DeviceTimeout(f"{self.url}: {what} timed out after {self.timeout:g} s") from None
        return rc, out, err

    def connect(self) -> None:
        rc, out, err = self.client("connect", self.serial, what="adb connect", device=False)
        text = out.decode(errors="replace").strip()
        if rc != 0 or not text.startswith(("connected to", "already connected")):
            raise self.error(f"unreachable: {adb_reason(out, err)}")
        self._connected_by_us = text.startswith("connected to")
        self.serial = text.split()[-1]  # adb's own spelling of the serial (e.g. IPv6 brackets)

    def only_device(self) -> str:
        rc, out, err = self.client("get-serialno", what="finding the device", device=False)
        if rc != 0:
            raise self.error(f"no single device to use: {adb_reason(out, err)}")
        return out.decode().strip()

    def wait_online(self) -> None:
        """A fresh TCP connection is 'offline' until the handshake ends; 'unauthorized' needs a human."""
        deadline = time.monotonic() + min(self.timeout, ONLINE_WAIT_S)
        while True:
            rc, out, err = self.client("get-state", what="asking the device state")
            state = out.decode().strip() if rc == 0 else adb_reason(out, err)
            if state == "device":
                return
            if "unauthorized" in state:
                raise self.error("authentication refused: accept the USB debugging prompt on the device")
            if time.monotonic() > deadline:
                raise self.error(f"device not available: {state}")
            time.sleep(0.1)

    def shell_argv(self, script: str) -> list[str]:
        return [self.adb, "-s", self.serial, "shell", "-T", script]

    def explain(self, stderr: bytes) -> str:
        return f"device lost or refused ({last_line(stderr)})"

    def push(self, local_path: str | os.PathLike[str], remote_name: str) -> None:
        name = self.check_name(remote_name)
        tmp = f"{self._wd}/{temp_name(name)}"
        what = f"push of {os.fspath(local_path)}"
        if not os.path.isfile(local_path):
            raise self.error(f"{what} failed: no such file")
        rc, out, err = self.client("push", os.fspath(local_path), tmp, what=what)
        if rc != 0:
            raise self.error(f"{what} failed: device lost or refused ({adb_reason(out, err)})")
        self.commit(tmp, name, file_mode(local_path))

    def pull(self, remote_name: str, local_path: str | os.PathLike[str]) -> None:
        src = self.path(remote_name)

        def fetch(tmp: Path) -> None:
            rc, out, err = self.client("pull", src, os.fspath(tmp), what=f"pull of {remote_name}")
            if rc != 0:
                raise self.error(f"pull of {remote_name} failed: {adb_reason(out, err)}")

        self.pull_via(remote_name, local_path, fetch)

    def _cleanup(self) -> None:
        try:
            self.remove_workdir()
        finally:
            if self._connected_by_us:
                self.client("disconnect", self.serial, what="adb disconnect", device=False)
