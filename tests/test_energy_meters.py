"""Meter back-ends replayed from recorded traces: PMIC and INA219 logs and samplers, Joulescope reads.

The device-side samplers run for real here, in a local `sh`, with stand-ins for what only a board has:
a `vcgencmd` script that prints the recorded PMIC dump, and an `ina219` module that replays a recorded
INA219 log. The parsing, the background start/kill and the log transfer are the shipped code paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import DeviceError, EdgeqError
from edgeq.runner import energy
from edgeq.runner.meters import meter_from_spec
from edgeq.runner.meters.ina219 import Ina219Meter, parse_ina219_log
from edgeq.runner.meters.joulescope import JoulescopeMeter, open_joulescope
from edgeq.runner.meters.pmic import PmicMeter, parse_pmic_adc, parse_pmic_log

DATA = Path(__file__).parent / "data" / "energy"
T0 = 1_700_000_000.0

# The verbatim Pi 5 capture, current x voltage per rail, multiplied out by hand.
CAPTURE_W = (0.09368929 * 3.69977600 + 0.08783370 * 3.31003300 + 0.18054710 * 1.80512600
             + 0.22543980 * 1.10476100 + 0.06666720 * 0.60146460 + 0.17566740 * 1.11025500
             + 0.37670900 * 0.80146440 + 6.22421000 * 0.86173300 + 0.00006105 * 3.31318300
             + 0.00036630 * 3.30677300 + 0.00305250 * 0.80029220 + 0.02417580 * 5.08664000)


def test_pmic_verbatim_dump():
    rails = parse_pmic_adc((DATA / "pmic_rpi5_load.txt").read_text())
    assert len(rails) == 12 and "EXT5V" not in rails and "BATT" not in rails  # voltage-only: no power
    assert rails["VDD_CORE"] == pytest.approx(6.22421 * 0.861733)
    assert sum(rails.values()) == pytest.approx(CAPTURE_W)
    nul = (DATA / "pmic_rpi5_load.txt").read_text().replace("\n", "\x00")  # mailbox-style separators
    assert sum(parse_pmic_adc(nul).values()) == pytest.approx(CAPTURE_W)


def test_pmic_logs_integrate_to_the_profile():
    idle = parse_pmic_log((DATA / "pmic_idle.log").read_text())
    active = parse_pmic_log((DATA / "pmic_active.log").read_text())
    assert len(idle) == 21 and idle.mean_w() == pytest.approx(1.55, rel=1e-6)
    assert len(active) == 31  # the record torn by the kill is dropped, not counted low
    assert active.t[0] == pytest.approx(T0) and active.duration_s == pytest.approx(3.0)
    assert active.energy_j() == pytest.approx(13.5, rel=1e-6)  # 4 -> 5 W linear over 3 s
    e = energy.energy_from_traces(idle, active, 300, 3.0, {"name": "pmic"})
    assert e.per_inference_j == pytest.approx((4.5 - 1.55) * 3.0 / 300, rel=1e-6)


def test_ina219_logs_integrate_to_the_profile():
    active = parse_ina219_log((DATA / "ina219_active.log").read_text())
    idle = parse_ina219_log((DATA / "ina219_idle.log").read_text())
    assert len(active) == 41  # the warning line and the line cut by the kill are skipped
    assert active.energy_j() == pytest.approx(10.2, rel=1e-6)  # 5.1 V x (0.8 -> 1.2 A) over 2 s
    assert idle.mean_w() == pytest.approx(5.1 * 0.560)


@pytest.fixture
def board(tmp_path):
    """A local stand-in for the device's shell, with recorded-data `vcgencmd` and `ina219` on its paths."""
    bin_dir, lib = tmp_path / "bin", tmp_path / "lib"
    bin_dir.mkdir()
    lib.mkdir()
    vcgencmd = bin_dir / "vcgencmd"
    vcgencmd.write_text(f"#!/bin/sh\n[ \"$1\" = pmic_read_adc ] || exit 2\ncat {DATA / 'pmic_rpi5_load.txt'}\n")
    vcgencmd.chmod(0o755)
    (lib / "ina219.py").write_text(textwrap.dedent(f"""\
        # Replays a recorded INA219 log: each current() returns the next recorded mA.
        _rows = [line.split() for line in open({str(DATA / 'ina219_active.log')!r}) if line.endswith("\\n")]
        _rows = [r for r in _rows if len(r) == 3 and r[0][0].isdigit()]
        class INA219:
            def __init__(self, shunt_ohms, max_expected_amps=None, address=0x40):
                assert shunt_ohms == 0.1 and address == 0x41, (shunt_ohms, address)
                self.k = 0
            def configure(self):
                pass
            def voltage(self):
                return float(_rows[self.k % len(_rows)][1])
            def current(self):
                self.k += 1
                return float(_rows[(self.k - 1) % len(_rows)][2])
        """))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(lib)}
    work = tmp_path / "work"
    work.mkdir()

    def shell(command: str, timeout: float) -> str:
        r = subprocess.run(["sh", "-c", command], cwd=work, env=env, capture_output=True, timeout=timeout, check=False)
        if r.returncode:
            raise DeviceError(f"local shell: exit {r.returncode}: {r.stderr.decode()[-200:]}")
        return r.stdout.decode()

    shell.work = work  # type: ignore[attr-defined]
    return shell


def _gone(pid: int) -> bool:
    """The process ended (a zombie waiting for a container's init to reap it counts as ended)."""
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(50):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_pmic_sampler_runs_and_is_killed(board):
    m = PmicMeter(board, period_s=0.05)
    m.start()
    pid = m._pid
    time.sleep(0.6)
    trace = m.stop()
    assert len(trace) >= 4 and np.all(np.diff(trace.t) > 0)
    assert trace.w == pytest.approx(np.full(len(trace), CAPTURE_W))
    assert abs(trace.t[-1] - time.time()) < 60  # stamped with the device clock (unix time)
    assert _gone(pid) and not list(board.work.iterdir())  # sampler ended, log removed


def test_ina219_sampler_replays_the_log(board):
    m = Ina219Meter(board, shunt_ohms=0.1, address=0x41, period_s=0.02, python=sys.executable)
    m.start()
    pid = m._pid
    time.sleep(1.0)
    trace = m.stop()
    recorded = parse_ina219_log((DATA / "ina219_active.log").read_text())
    assert len(trace) >= 5
    assert trace.w == pytest.approx(np.resize(recorded.w, len(trace)))  # bus V x mA / 1000, in recorded order
    assert _gone(pid)


def test_device_sampler_failure_is_one_clear_error(board):
    m = Ina219Meter(board, shunt_ohms=0.1, address=0x40, period_s=0.02, python=sys.executable)  # wrong address
    m.start()
    time.sleep(0.5)
    with pytest.raises(DeviceError, match="ina219 meter: the sampler on the device recorded nothing.*AssertionError"):
        m.stop()


class RecordedJoulescope:
    """Streams recorded (current, voltage) rows at 1 kHz, as `read(contiguous_duration=)` would."""

    def __init__(self, path: Path):
        self.rows = np.loadtxt(path, delimiter=",", skiprows=1)
        self.pos = 0
        self.closed = False

    def read(self, contiguous_duration: float) -> np.ndarray:
        n = round(contiguous_duration * 1000)
        time.sleep(contiguous_duration)
        out = self.rows[self.pos: self.pos + n]
        if len(out) < n:
            raise RuntimeError("recording exhausted")
        self.pos += n
        return out

    def close(self) -> None:
        self.closed = True


def test_joulescope_replayed_reads():
    dev = RecordedJoulescope(DATA / "joulescope_js220.csv")
    with JoulescopeMeter(dev, chunk_s=0.05) as m:
        t_start = time.monotonic()
        trace = m.sample(0.3)
        t_end = time.monotonic()
    used = dev.rows[: dev.pos]
    assert dev.closed and len(trace) == len(used) >= 200
    assert trace.w == pytest.approx(used[:, 0] * used[:, 1])    # current x voltage, sample by sample
    assert t_start - 0.06 <= trace.t[0] and trace.t[-1] <= t_end  # host monotonic clock: clippable to a loop
    assert np.mean(trace.w) == pytest.approx(2.5, abs=0.01)


def test_joulescope_loop_is_clipped_to_the_window():
    """Host-clock meter: only samples stamped inside the run loop count as active."""
    dev = RecordedJoulescope(DATA / "joulescope_js220.csv")
    loop = {}

    def run_loop() -> tuple[int, float]:
        t = time.monotonic()
        time.sleep(0.4)
        loop["s"] = time.monotonic() - t
        return 100, loop["s"]

    e = energy.measure_energy(JoulescopeMeter(dev, chunk_s=0.05), run_loop, idle_s=0.3)
    assert e.method == "joulescope" and e.basis["active_samples"] <= loop["s"] * 1000 + 60
    assert e.basis["idle_w"] == pytest.approx(2.5, abs=0.01) and e.basis["active_w"] == pytest.approx(2.5, abs=0.01)
    assert abs(e.per_inference_j) < 0.01 * 2.5 * loop["s"] / 100  # no load change recorded: ~0 above idle


def test_joulescope_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "joulescope", None)  # makes `import joulescope` raise ImportError
    with pytest.raises(EdgeqError, match="needs the 'joulescope' package: pip install joulescope"):
        open_joulescope()


def test_meter_specs(board):
    assert isinstance(meter_from_spec("pmic?period=0.2", board), PmicMeter)
    ina = meter_from_spec("ina219?shunt=0.05&address=0x41", board)
    assert isinstance(ina, Ina219Meter) and ina.shunt_ohms == 0.05 and ina.address == 0x41
    assert meter_from_spec(f"replay:{DATA / 'replay_rpi5.csv'}").describe()["name"] == "replay"
    with pytest.raises(EdgeqError, match="unknown meter 'fluke'"):
        meter_from_spec("fluke")
    with pytest.raises(EdgeqError, match="unknown option 'rate'"):
        meter_from_spec("pmic?rate=3", board)
    with pytest.raises(EdgeqError, match="needs a connection"):
        meter_from_spec("pmic")
