"""Latency statistics and per-layer aggregation against hand-computed values; modelled figures beside them."""

from __future__ import annotations

import pytest

from edgeq.runner import profile
from edgeq.targets import latency as model
from edgeq.targets.registry import get_target


def test_latency_stats_hand_computed():
    # 10 runs: 1..9 ms and one 100 ms outlier (a page fault, a preemption).
    s = profile.latency_stats([x / 1e3 for x in [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]], "emulated")
    assert s["source"] == "emulated" and s["n"] == 10
    assert s["min_ms"] == pytest.approx(1) and s["max_ms"] == pytest.approx(100)
    assert s["mean_ms"] == pytest.approx(14.5)
    assert s["p50_ms"] == pytest.approx(5.5)            # between the 5th and 6th order statistic
    assert s["p90_ms"] == pytest.approx(9 + 0.1 * 91)   # rank 8.1 -> 9 + 0.1 x (100 - 9)
    assert s["p99_ms"] == pytest.approx(9 + 0.91 * 91)
    # sample std: sum of squared deviations / 9
    dev = sum((x - 14.5) ** 2 for x in [1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    assert s["std_ms"] == pytest.approx((dev / 9) ** 0.5)
    assert s["samples_ms"] == pytest.approx([1, 2, 3, 4, 5, 6, 7, 8, 9, 100])


def test_latency_stats_single_run_and_bad_input():
    s = profile.latency_stats([0.002], "measured")
    assert s["std_ms"] == 0.0 and s["p99_ms"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="source must be one of"):
        profile.latency_stats([0.001], "simulated")
    with pytest.raises(ValueError, match="at least one"):
        profile.latency_stats([], "measured")
    with pytest.raises(ValueError, match="finite"):
        profile.latency_stats([0.001, -0.001], "measured")


def test_layer_stats_median_and_share():
    runs = [
        [(0, "linear", "neon_dotprod/t2_matvec", 0.004), (1, "relu", "ref/relu", 0.001), (2, "linear", "ref/i8", 0.003)],
        [(0, "linear", "neon_dotprod/t2_matvec", 0.006), (1, "relu", "ref/relu", 0.001), (2, "linear", "ref/i8", 0.003)],
        [(0, "linear", "neon_dotprod/t2_matvec", 0.005), (1, "relu", "ref/relu", 0.009), (2, "linear", "ref/i8", 0.003)],
    ]
    t = profile.layer_stats(runs, "emulated")
    assert t["source"] == "emulated" and t["runs"] == 3
    med = [r["median_ms"] for r in t["layers"]]
    assert med == pytest.approx([5.0, 1.0, 3.0])   # the median ignores the 9 ms outlier of run 3
    assert t["total_ms"] == pytest.approx(9.0)
    assert [r["share"] for r in t["layers"]] == pytest.approx([5 / 9, 1 / 9, 3 / 9])
    assert [r["kernel"] for r in t["layers"]] == ["neon_dotprod/t2_matvec", "ref/relu", "ref/i8"]
    assert all(r["modelled_ms"] is None for r in t["layers"])


def test_layer_stats_rejects_inconsistent_runs():
    a = [(0, "linear", "k", 0.001)]
    with pytest.raises(ValueError, match="run 1 reports different layers"):
        profile.layer_stats([a, [(0, "linear", "other_kernel", 0.001)]], "measured")
    with pytest.raises(ValueError, match="twice"):
        profile.layer_stats([[(0, "a", "k", 0.1), (0, "b", "k", 0.1)]], "measured")
    with pytest.raises(ValueError, match="no runs"):
        profile.layer_stats([], "measured")


def test_modelled_beside_emulated():
    target = get_target("rpi5")
    layers = [model.Layer("0_linear", 64, 256, "neon_dotprod/t2_matvec", 2.0625),
              model.Layer("2_linear", 10, 64, "neon_dotprod/i8_matvec", 8.0)]
    est = model.predict(target, layers, threads=1, other_ops=1)
    m = profile.modelled_latency(est)
    assert m["source"] == "modelled" and m["method"] == "roofline"
    assert m["ms"] == pytest.approx(est.total_s * 1e3)
    assert m["basis"]["sources"]["cpu"] == target.cpu["source"]

    table = profile.layer_stats([[(0, "linear", "neon_dotprod/t2_matvec", 0.01), (1, "relu", "ref", 0.001),
                                  (2, "linear", "neon_dotprod/i8_matvec", 0.002)]], "emulated")
    joined = profile.attach_modelled_layers(table, est)
    got = [r["modelled_ms"] for r in joined["layers"]]
    assert got[0] == pytest.approx(est.layers[0].time_s * 1e3)
    assert got[1] is None                        # relu: the model gives no per-op time, so no guess
    assert got[2] == pytest.approx(est.layers[1].time_s * 1e3)
    assert joined["source"] == "emulated"        # the measured column keeps its own label


def test_modelled_from_instructions_and_count():
    target = get_target("rpi5")
    m = profile.modelled_from_instructions(target, 6_000_000)
    ipc, mhz = target.section("latency")["ipc"], target.cpu["freq_mhz"]
    assert m["source"] == "modelled" and m["ms"] == pytest.approx(6e6 / (ipc * mhz * 1e6) * 1e3)
    c = profile.instruction_count(6_000_000, "qemu insn plugin")
    assert c == {"source": "emulated", "count": 6_000_000, "tool": "qemu insn plugin"}
