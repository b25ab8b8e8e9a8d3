"""Energy protocol and modelled energy, checked against traces with known integrals (tests/data/energy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import EdgeqError
from edgeq.runner import energy
from edgeq.runner.energy import ModelledEnergy, ReplayMeter, Trace
from edgeq.targets.registry import get_target

DATA = Path(__file__).parent / "data" / "energy"


def test_trace_trapezoid_uses_real_timestamps():
    # Linear 1 W -> 3 W over 2 s, sampled unevenly: exact integral 4 J, mean 2 W.
    t = np.array([0.0, 0.1, 0.2, 0.3, 2.0])
    tr = Trace(t, 1 + t)
    assert tr.energy_j() == pytest.approx(4.0)
    assert tr.mean_w() == pytest.approx(2.0)
    assert np.mean(tr.w) != pytest.approx(2.0)  # what a plain average would have said
    assert len(tr.clip(0.15, 0.35)) == 2
    with pytest.raises(ValueError, match="strictly increasing"):
        Trace(np.array([0.0, 0.0]), np.array([1.0, 1.0]))


def test_replay_meter_segments_have_known_integrals():
    m = ReplayMeter(DATA / "replay_rpi5.csv")
    assert m.describe()["segments"] == ["idle", "active"]
    idle, active = m.sample(2.0), m.stop()
    assert idle.duration_s == pytest.approx(2.0) and idle.mean_w() == pytest.approx(2.7)
    assert active.duration_s == pytest.approx(3.0) and active.energy_j() == pytest.approx(6.5 * 3.0)
    with pytest.raises(EdgeqError, match="no segment left"):
        m.stop()


def test_measure_energy_protocol_on_replay():
    """(mean active - idle) x loop time / inferences, with the replayed 2.7 W idle and 6.5 W active."""
    m = ReplayMeter(DATA / "replay_rpi5.csv")
    e = energy.measure_energy(m, lambda: (150, 3.0), min_samples=20)
    assert e.source == "measured" and e.method == "replay"
    assert e.per_inference_j == pytest.approx((6.5 - 2.7) * 3.0 / 150)
    assert e.total_per_inference_j == pytest.approx(6.5 * 3.0 / 150)
    assert e.basis["idle_w"] == pytest.approx(2.7) and e.basis["active_samples"] == 31
    assert e.basis["meter"]["file"].endswith("replay_rpi5.csv")


def test_too_short_loop_is_refused_with_advice():
    m = ReplayMeter(DATA / "replay_rpi5.csv")
    with pytest.raises(EdgeqError, match=r"gave 31 meter samples, need >= 40; run >= 4 s"):
        energy.measure_energy(m, lambda: (150, 3.0), min_samples=40)


def test_loop_sizing_for_a_100ms_meter():
    m = ReplayMeter(DATA / "replay_rpi5.csv")  # its densest segment samples every 50 ms or more
    n = energy.loop_inferences(0.002, m, min_samples=20, min_loop_s=0.0)
    assert n * 0.002 >= 20 * m.period_s


def test_modelled_energy_from_target_power():
    target = get_target("rpi5")
    p = target.section("power")
    e = ModelledEnergy(target).energy(2.0, "modelled", "roofline")
    assert e.source == "modelled"
    assert e.per_inference_j == pytest.approx((p["load_w"] - p["idle_w"]) * 2e-3)
    assert e.total_per_inference_j == pytest.approx(p["load_w"] * 2e-3)
    assert e.basis["power_source"] == p["source"] and e.basis["latency_source"] == "modelled"
    with pytest.raises(ValueError, match="not emulated"):
        ModelledEnergy(target).energy(2.0, "emulated")


def test_modelled_energy_mlperf_tiny_point():
    """STM32L4R5 KWS: the board file's 45 mW x 62.9 ms = 2.83 mJ, MLPerf Tiny's published 2833 uJ (DESIGN §7)."""
    e = ModelledEnergy(get_target("stm32l4")).energy(62.9, "measured")
    assert e.total_per_inference_j == pytest.approx(2833e-6, rel=0.01)
