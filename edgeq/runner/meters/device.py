"""Meters that sample on the device itself (PMIC, INA219 on I²C): a sampler script runs there in the
background while the run loop runs, writing timestamped samples to a log the host reads afterwards.

Sampling on the device keeps the host out of the loop (no concurrent commands on one transport) and
timestamps samples with the device clock, next to the power they describe.
"""

from __future__ import annotations

import secrets
import shlex
from abc import abstractmethod
from typing import Protocol

from edgeq.errors import DeviceError
from edgeq.runner.energy import Meter, Trace


class DeviceShell(Protocol):
    """Runs one POSIX shell command line on the device, in a working directory it may write to, with no
    exec wrapper (the sampler reads the real board, not an emulator); returns stdout, raises DeviceError
    when the command cannot be run or exits non-zero."""

    def __call__(self, command: str, timeout: float) -> str: ...


class DeviceSamplerMeter(Meter):
    """Starts `sampler_script()` with nohup in the background; `stop()` kills it and parses its log."""

    timeout_s = 30.0

    def __init__(self, shell: DeviceShell):
        self.shell = shell
        self._pid: int | None = None
        self._log = f".edgeq-meter-{secrets.token_hex(4)}.log"

    @abstractmethod
    def sampler_script(self) -> str:
        """A shell command line that prints samples forever (until killed) to stdout."""

    @abstractmethod
    def parse(self, text: str) -> Trace:
        """The sampler's log as a power trace; incomplete records (cut by the kill) are dropped."""

    def start(self) -> None:
        if self._pid is not None:
            raise RuntimeError(f"{self.name} meter already started")
        cmd = f"nohup sh -c {shlex.quote(self.sampler_script())} > {self._log} 2>&1 < /dev/null & echo $!"
        out = self.shell(cmd, self.timeout_s).strip()
        if not out.isdigit():
            raise DeviceError(f"{self.name} meter: starting the sampler printed {out[-200:]!r}, not a process id")
        self._pid = int(out)

    def stop(self) -> Trace:
        if self._pid is None:
            raise RuntimeError(f"{self.name} meter not started")
        pid, self._pid = self._pid, None
        text = self.shell(f"kill {pid} 2>/dev/null; cat {self._log}; rm -f {self._log}", self.timeout_s)
        trace = self.parse(text)
        if len(trace) == 0:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            raise DeviceError(f"{self.name} meter: the sampler on the device recorded nothing"
                              f" ({lines[-1].strip() if lines else 'no output'})")
        return trace
