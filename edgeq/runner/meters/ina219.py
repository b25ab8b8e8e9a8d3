"""TI INA219 on the board's I²C bus, read with the `pi-ina219` package on the device.

pi-ina219 semantics (chrisb2/pi_ina219 README): `INA219(shunt_ohms, max_expected_amps, address=0x40)`,
`configure()`, `voltage()` = bus voltage in V (load side of the shunt), `current()` = mA. Power is
bus voltage x current, as the package's own `power()` computes it. The sampler prints one line per
sample, "<unix time> <bus V> <current mA>", and the host turns the log into a trace.
"""

from __future__ import annotations

import shlex
from typing import Any

import numpy as np

from edgeq.runner.energy import Trace
from edgeq.runner.meters.device import DeviceSamplerMeter, DeviceShell

SAMPLER = """\
import sys, time
from ina219 import INA219
shunt, amps, address, period = float(sys.argv[1]), sys.argv[2], int(sys.argv[3], 0), float(sys.argv[4])
ina = INA219(shunt, float(amps) if amps != "auto" else None, address=address)
ina.configure()
while True:
    v, ma = ina.voltage(), ina.current()
    print(f"{time.time():.6f} {v:.6f} {ma:.6f}", flush=True)
    time.sleep(period)
"""


def parse_ina219_log(text: str) -> Trace:
    """Lines of three numbers; anything else (a warning, a line cut by the kill) is skipped."""
    t: list[float] = []
    w: list[float] = []
    lines = text.split("\n")
    for line in lines[:-1]:  # the last piece has no newline yet: possibly cut by the kill
        parts = line.split()
        if len(parts) != 3:
            continue
        try:
            stamp, volts, milliamps = (float(p) for p in parts)
        except ValueError:
            continue
        t.append(stamp)
        w.append(volts * milliamps / 1e3)
    return Trace(np.array(t), np.array(w))


class Ina219Meter(DeviceSamplerMeter):
    """An INA219 breakout in the board's supply line (high side), on I²C bus 1 at `address`."""

    name = "ina219"

    def __init__(self, shell: DeviceShell, shunt_ohms: float = 0.1, max_amps: float | None = None,
                 address: int = 0x40, period_s: float = 0.01, python: str = "python3"):
        super().__init__(shell)
        self.shunt_ohms, self.max_amps, self.address, self._period = shunt_ohms, max_amps, address, period_s
        self.python = python

    @property
    def period_s(self) -> float:
        return self._period

    def sampler_script(self) -> str:
        # exec: the shell becomes python, so stop()'s kill reaches the sampler itself, not a parent shell.
        amps = "auto" if self.max_amps is None else f"{self.max_amps:g}"
        return "exec " + shlex.join([self.python, "-u", "-c", SAMPLER, f"{self.shunt_ohms:g}", amps, hex(self.address),
                           f"{self._period:g}"])

    def parse(self, text: str) -> Trace:
        return parse_ina219_log(text)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "reads": "INA219 bus voltage x current (pi-ina219)", "shunt_ohms": self.shunt_ohms,
                "address": hex(self.address), "period_s": self._period}
