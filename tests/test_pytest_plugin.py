"""The pytest plugin, run as users run it: skips cleanly without a device, runs on the emulated rpi5."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

HIL = str(ROOT / "examples" / "hil")


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", HIL, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)


def test_skips_without_configuration():
    res = pytest_run("-rs")
    assert res.returncode == 0 and "3 skipped" in res.stdout, res.stdout
    assert "no device configured: pass --edgeq-target" in res.stdout


def test_runs_on_emulated_rpi5_and_skips_by_marker():
    res = pytest_run("--edgeq-target", "rpi5")
    assert res.returncode == 0 and "2 passed, 1 skipped" in res.stdout, res.stdout + res.stderr
    res = pytest_run("--edgeq-target", "rpi4", "-rs")  # Cortex-A72: no dotprod
    assert "1 passed, 2 skipped" in res.stdout and "needs dotprod" in res.stdout, res.stdout + res.stderr


def test_runs_on_an_emulated_cortex_m_board():
    res = pytest_run("--edgeq-target", "stm32h7", "-rs")  # qemu-system-arm mps2-an500 over its UART
    assert res.returncode == 0 and "1 passed, 2 skipped" in res.stdout, res.stdout + res.stderr
