"""Raspberry Pi 5 PMIC (DA9091 ADC) read with `vcgencmd pmic_read_adc`: the sum over rails of current x voltage.

The output is one line per channel, currents first, then voltages, channel numbers differing between a
rail's current and voltage line (so rails are paired by name, never by number):

     3V7_WL_SW_A current(0)=0.09368929A
      VDD_CORE_A current(7)=6.22421000A
      VDD_CORE_V volt(15)=0.86173300V
         EXT5V_V volt(24)=5.09066000V

Format as captured verbatim on a Pi 5 Model B Rev 1.0 in ml-energy/zeus tests/device/machine/test_rpi.py,
and shown in Jeff Geerling's "Overclocking and underclocking the Raspberry Pi 5" (jeffgeerling.com, 2023).
EXT5V (the 5 V input) and BATT (RTC cell) have a voltage but no current, so they drop out: the figure
covers the PMIC's rails on the board, not the USB ports, fan or HATs fed straight from 5 V
(docs/energy.md). The mailbox interface returns NUL-separated text; both separators are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from edgeq.runner.energy import Trace
from edgeq.runner.meters.device import DeviceSamplerMeter, DeviceShell

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(current|volt)\(\d+\)=([-+0-9.eE]+)([AV])\s*$")
_MARK = "@ "   # sampler record: "@ <unix time>", the vcgencmd dump, then "." on its own line


def parse_pmic_adc(text: str) -> dict[str, float]:
    """Watts per rail from one `vcgencmd pmic_read_adc` dump; rails with only a voltage are left out."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in re.split(r"[\n\x00]", text):
        m = _LINE.match(line)
        if not m:
            continue
        rail, suffix, kind, value, unit = m.groups()
        if (suffix, kind, unit) == ("A", "current", "A"):
            amps[rail] = float(value)
        elif (suffix, kind, unit) == ("V", "volt", "V"):
            volts[rail] = float(value)
    return {rail: amps[rail] * volts[rail] for rail in sorted(amps.keys() & volts.keys())}


def parse_pmic_log(text: str) -> Trace:
    """The sampler's log as a trace of total watts. A record counts only when closed by its "." line and
    when it names the same rails as the first complete record (a torn read would under-count)."""
    t: list[float] = []
    w: list[float] = []
    rails: set[str] | None = None
    stamp: float | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith(_MARK):
            try:
                stamp, body = float(line[len(_MARK):]), []
            except ValueError:
                stamp = None
        elif line.strip() == "." and stamp is not None:
            watts = parse_pmic_adc("\n".join(body))
            if watts and (rails is None or set(watts) == rails):
                rails = set(watts)
                t.append(stamp)
                w.append(sum(watts.values()))
            stamp = None
        elif stamp is not None:
            body.append(line)
    return Trace(np.array(t), np.array(w))


class PmicMeter(DeviceSamplerMeter):
    """Pi 5 on-board PMIC: needs no extra hardware; the user running it must be in the `video` group."""

    name = "pmic"

    def __init__(self, shell: DeviceShell, period_s: float = 0.1):
        super().__init__(shell)
        self._period = period_s

    @property
    def period_s(self) -> float:
        return self._period

    def sampler_script(self) -> str:
        # One printf per record: a kill between records never leaves half a dump behind.
        return (f"while :; do a=$(vcgencmd pmic_read_adc) || exit 1; t=$(date +%s.%N); "
                f"printf '{_MARK}%s\\n%s\\n.\\n' \"$t\" \"$a\"; sleep {self._period:g}; done")

    def parse(self, text: str) -> Trace:
        return parse_pmic_log(text)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "reads": "vcgencmd pmic_read_adc: sum of PMIC rail current x voltage",
                "excludes": "5 V consumers outside the PMIC (USB, fan, HATs)", "period_s": self._period}
