"""FPGA cost model: RTL correctness (iverilog vs numpy), estimate vs yosys, folding search, ACE."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from edgeq.errors import EdgeqError
from edgeq.targets import fpga
from edgeq.targets import fpga_rtl as rtl
from edgeq.targets import fpga_synth as synth

needs_tools = pytest.mark.skipif(not (shutil.which("yosys") and shutil.which("iverilog")),
                                 reason="yosys and iverilog are needed (tools/bootstrap.sh installs them)")
ZYNQ = fpga.DEVICES["xc7z020"]


@needs_tools
@pytest.mark.parametrize("fmt,abits,pe,simd,mw,mh", [
    ("xnor", 1, 2, 8, 24, 4), ("binary", 8, 1, 3, 9, 2), ("ternary", 4, 4, 4, 16, 8),
    ("int4", 4, 2, 4, 16, 6), ("int8", 8, 3, 2, 8, 3),
])
def test_rtl_matches_numpy(fmt, abits, pe, simd, mw, mh):
    """Odd sizes too: SIMD not a power of two, a single neuron fold, PE = MH."""
    spec = rtl.EngineSpec(fmt, pe, simd, abits, mw, mh)
    w, x = rtl.random_case(spec, 4, seed=3)
    np.testing.assert_array_equal(synth.simulate(spec, w, x), rtl.reference(spec, w, x))


@needs_tools
@pytest.mark.parametrize("family,point", [
    ("xc7", ("ternary", 4, 4, 8, 64, 32)),
    ("xc7", ("xnor", 1, 4, 16, 128, 32)),
])
def test_estimate_within_documented_error_of_synthesis(tmp_path, family, point):
    """Points outside the sweep (LUTRAM weights: yosys has no RAMB18 simulation model for the netlist)."""
    fmt, abits, pe, simd, mw, mh = point
    layer = fpga.Layer("t", fmt, mh, mw, abits=abits)
    spec = layer.spec(pe, simd)
    netlist = tmp_path / "netlist.v"
    got = synth.synthesize(spec, family, netlist=netlist)
    w, x = rtl.random_case(spec, 2, seed=5)
    np.testing.assert_array_equal(synth.simulate(spec, w, x, netlist, family), rtl.reference(spec, w, x))
    est = fpga.estimate(layer, pe, simd, ZYNQ)
    bound = fpga.load_model()["heldout_error_pct"]["lut"]["max"]
    assert abs(est.lut - got.lut) / got.lut * 100 <= bound, (est, got)
    assert est.dsp == got.dsp and est.bram == got.bram18


def test_cycles_formula_and_fps():
    layer = fpga.Layer("conv", "t2", mh=64, mw=288, n=100, abits=8)
    est = fpga.estimate(layer, 4, 16, ZYNQ)
    assert est.cycles == (64 // 4) * (288 // 16) * 100
    assert est.fps == pytest.approx(ZYNQ.clock_mhz * 1e6 / est.cycles)
    with pytest.raises(EdgeqError, match="must divide"):
        fpga.estimate(layer, 5, 16, ZYNQ)


def test_dsp_rule_follows_product_width():
    assert fpga.estimate(fpga.Layer("a", "q4", 8, 16, abits=4), 2, 4, ZYNQ).dsp == 0  # 8-bit product: LUTs
    assert fpga.estimate(fpga.Layer("b", "q4", 8, 16, abits=8), 2, 4, ZYNQ).dsp == 8
    assert fpga.estimate(fpga.Layer("c", "q4", 8, 16, abits=8), 2, 4, ZYNQ, dsp=False).dsp == 0


LAYERS = [
    fpga.Layer("conv1", "t2", mh=16, mw=27, n=256, abits=8, op="conv2d"),
    fpga.Layer("conv2", "b1xnor", mh=32, mw=144, n=64, op="conv2d"),
    fpga.Layer("fc", "q4", mh=10, mw=512, n=1, abits=8),
]


def test_plan_meets_requested_fps_with_balanced_layers():
    plan = fpga.plan_folding(LAYERS, ZYNQ, fps=20000)
    assert plan.feasible, plan.reason
    budget = ZYNQ.clock_mhz * 1e6 / 20000
    assert all(e.cycles <= budget for e in plan.estimates)
    assert plan.fps >= 20000
    slower = fpga.plan_folding(LAYERS, ZYNQ, fps=2000)
    assert slower.totals["lut"] < plan.totals["lut"]  # cheaper when less throughput is asked
    cfg = plan.folding_config()
    assert {k: (v["PE"], v["SIMD"]) for k, v in cfg.items() if k != "Defaults"} == {
        e.layer: (e.pe, e.simd) for e in plan.estimates}


def test_plan_max_fps_fits_device():
    plan = fpga.plan_folding(LAYERS, ZYNQ)
    assert plan.feasible
    for r in fpga.RESOURCES:
        assert plan.totals[r] <= getattr(ZYNQ, r)
    assert plan.fps > fpga.plan_folding(LAYERS, ZYNQ, fps=2000).fps


def test_plan_says_why_it_cannot():
    tiny = replace(ZYNQ, id="tiny", lut=150)
    plan = fpga.plan_folding(LAYERS, tiny)
    assert not plan.feasible and "LUT" in plan.reason and "tiny" in plan.reason and "%" in plan.reason
    fast = fpga.plan_folding(LAYERS, ZYNQ, fps=1e6)  # conv1 needs >= 256 cycles even fully parallel
    assert not fast.feasible and "conv1" in fast.reason and "fully parallel" in fast.reason
    over = fpga.plan_folding(LAYERS, replace(ZYNQ, id="small", lut=3000), fps=50000)
    assert not over.feasible and "LUT" in over.reason


def test_ace_known_example():
    layers = [fpga.Layer("a", "i8", 10, 20, abits=8), fpga.Layer("b", "xnor", 4, 25, n=2),
              fpga.Layer("c", "t158", 2, 3, abits=8)]
    got = fpga.ace(layers)
    assert got["layers"]["a"] == 10 * 20 * 8 * 8
    assert got["layers"]["b"] == 4 * 25 * 2
    assert got["layers"]["c"] == pytest.approx(6 * math.log2(3) * 8)
    assert got["macs"] == 200 + 200 + 6


def test_cli_on_blob(tmp_path, request):
    pytest.importorskip("edgeq.formats.ids")
    from click.testing import CliRunner

    blob = request.getfixturevalue("mlp_t2_blob")
    out = tmp_path / "folding.json"
    res = CliRunner().invoke(fpga.fpga, ["--target", "xc7z020", str(blob), "--json", "-o", str(out),
                                         "--rtl", str(tmp_path / "rtl")])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert plan["feasible"] and plan["layers"] and plan["source"] == "modelled"
    assert set(json.loads(out.read_text())) - {"Defaults"} == {ly["layer"] for ly in plan["layers"]}
    assert list((tmp_path / "rtl").glob("*.v"))
