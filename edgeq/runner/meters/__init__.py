"""Energy meter back-ends, chosen by a short spec (the `meter` key of ~/.config/edgeq/devices.toml):

    pmic[?period=0.1]                                   Raspberry Pi 5 PMIC via vcgencmd, on the device
    ina219[?shunt=0.1&max_amps=3&address=0x40&period=0.01]  INA219 on the device's I²C bus (pi-ina219)
    joulescope[?chunk=0.25]                             Joulescope on the host's USB
    replay:PATH                                         a recorded trace file (tests, demos)
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from edgeq.errors import EdgeqError
from edgeq.runner.energy import Meter, ReplayMeter
from edgeq.runner.meters.device import DeviceShell
from edgeq.runner.meters.ina219 import Ina219Meter
from edgeq.runner.meters.joulescope import JoulescopeMeter
from edgeq.runner.meters.pmic import PmicMeter

OPTIONS = {"pmic": {"period"}, "ina219": {"shunt", "max_amps", "address", "period"}, "joulescope": {"chunk"}}


def meter_from_spec(spec: str, shell: DeviceShell | None = None) -> Meter:
    """The meter a spec names; device-side meters need `shell` to reach the board."""
    if spec.startswith("replay:"):
        return ReplayMeter(Path(spec.removeprefix("replay:")))
    name, _, query = spec.partition("?")
    if name not in OPTIONS:
        raise EdgeqError(f"unknown meter {name!r} (known: {', '.join(OPTIONS)}, replay:PATH)")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    for key in opts:
        if key not in OPTIONS[name]:
            raise EdgeqError(f"meter {name}: unknown option {key!r} (known: {', '.join(sorted(OPTIONS[name]))})")
    try:
        num = {k: float(v) for k, v in opts.items() if k != "address"}
        address = int(opts.get("address", "0x40"), 0)
    except ValueError:
        raise EdgeqError(f"meter {spec!r}: option values must be numbers") from None
    if name == "joulescope":
        return JoulescopeMeter(chunk_s=num.get("chunk", 0.25))
    if shell is None:
        raise EdgeqError(f"meter {name} samples on the device and needs a connection to it")
    if name == "pmic":
        return PmicMeter(shell, period_s=num.get("period", 0.1))
    return Ina219Meter(shell, shunt_ohms=num.get("shunt", 0.1), max_amps=num.get("max_amps"), address=address,
                       period_s=num.get("period", 0.01))
