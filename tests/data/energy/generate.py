"""Writes the energy traces the tests replay, from power profiles whose integrals are known exactly.

Every profile is constant or linear in time and every segment has a sample at both of its ends, so
the trapezoidal rule integrates it exactly: the tests compare against the closed-form energy below,
not against a second run of the code under test. Timestamps are deliberately uneven (dense early,
sparse late), so a plain average of the samples would give the wrong mean power.
Run it from anywhere: `python tests/data/energy/generate.py`; the output is deterministic.

PMIC dumps are the verbatim Pi 5 capture in pmic_rpi5_load.txt (from ml-energy/zeus,
tests/device/machine/test_rpi.py) with every rail current scaled so the rails sum to the wanted watts.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
T0 = 1_700_000_000.0  # device clock: unix time, as `date +%s.%N` / time.time() print it

# (segment, seconds, watts at start, watts at end, samples). Linear in between.
PMIC_IDLE = (2.0, 1.55, 1.55, 21)
PMIC_ACTIVE = (3.0, 4.0, 5.0, 31)        # mean 4.5 W, 13.5 J
INA219_VOLTS = 5.1
INA219_ACTIVE_MA = (2.0, 800.0, 1200.0, 41)   # P = 5.1 V x I: 4.08 -> 6.12 W, 10.2 J
INA219_IDLE_MA = (1.0, 560.0, 560.0, 21)      # 2.856 W
REPLAY_IDLE = (2.0, 2.7, 2.7, 21)
REPLAY_ACTIVE = (3.0, 6.0, 7.0, 31)      # mean 6.5 W
JOULESCOPE = (0.5, 5.0, 2000)            # (mean A, V, rows) at 1 kHz; current wobbles +-0.02 A, mean 2.5 W


def uneven(seconds: float, n: int) -> list[float]:
    """n timestamps from 0 to `seconds`, spacing growing linearly (first gaps ~1/3 of the last)."""
    gaps = [1 + 2 * k / (n - 2) for k in range(n - 1)]
    scale = seconds / sum(gaps)
    out, t = [0.0], 0.0
    for g in gaps[:-1]:
        t += g * scale
        out.append(round(t, 6))
    return out + [seconds]


def linear(profile: tuple[float, float, float, int]) -> list[tuple[float, float]]:
    seconds, a, b, n = profile
    return [(t, a + (b - a) * t / seconds) for t in uneven(seconds, n)]


def pmic_dump(watts: float) -> str:
    capture = (HERE / "pmic_rpi5_load.txt").read_text()
    rails = re.findall(r"^\s*(\S+)_([AV]) (?:current|volt)\(\d+\)=([0-9.]+)[AV]$", capture, re.MULTILINE)
    amps = {r: float(v) for r, k, v in rails if k == "A"}
    volts = {r: float(v) for r, k, v in rails if k == "V"}
    k = watts / sum(amps[r] * volts[r] for r in amps if r in volts)
    return re.sub(r"current\((\d+)\)=([0-9.]+)A",
                  lambda m: f"current({m.group(1)})={float(m.group(2)) * k:.8f}A", capture).rstrip("\n")


def pmic_log(profile: tuple[float, float, float, int], torn: bool) -> str:
    out = [f"@ {T0 + t:.6f}\n{pmic_dump(w)}\n.\n" for t, w in linear(profile)]
    if torn:  # the kill landed mid-record: a header and half a dump, no closing "."
        out.append(f"@ {T0 + profile[0] + 0.1:.6f}\n" + "\n".join(pmic_dump(9.9).splitlines()[:5]) + "\n")
    return "".join(out)


def ina219_log(profile: tuple[float, float, float, int], torn: bool) -> str:
    lines = [f"{T0 + t:.6f} {INA219_VOLTS:.6f} {ma:.6f}\n" for t, ma in linear(profile)]
    if torn:
        lines.insert(3, "/usr/lib/python3/dist-packages/ina219.py: UserWarning: device busy\n")
        lines.append(f"{T0 + profile[0] + 0.01:.6f} 5.1")  # cut by the kill: no newline, one field short
    return "".join(lines)


def main() -> None:
    (HERE / "pmic_idle.log").write_text(pmic_log(PMIC_IDLE, torn=False))
    (HERE / "pmic_active.log").write_text(pmic_log(PMIC_ACTIVE, torn=True))
    (HERE / "ina219_idle.log").write_text(ina219_log(INA219_IDLE_MA, torn=False))
    (HERE / "ina219_active.log").write_text(ina219_log(INA219_ACTIVE_MA, torn=True))
    rows = ["# recorded-format trace: t_s,watts,segment (see generate.py for the profile)", "t_s,watts,segment"]
    rows += [f"{t:.6f},{w:.6f},idle" for t, w in linear(REPLAY_IDLE)]
    rows += [f"{REPLAY_IDLE[0] + 1 + t:.6f},{w:.6f},active" for t, w in linear(REPLAY_ACTIVE)]
    (HERE / "replay_rpi5.csv").write_text("\n".join(rows) + "\n")
    amps, volts, n = JOULESCOPE
    (HERE / "joulescope_js220.csv").write_text(
        "current_a,voltage_v\n" + "".join(f"{amps + 0.01 * ((k * 7) % 5 - 2):.6f},{volts:.6f}\n" for k in range(n)))


if __name__ == "__main__":
    main()
