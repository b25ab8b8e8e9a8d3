"""`edgeq plan`: per-layer formats within a budget, measured accuracy beside the uniform formats, and
`edgeq pack --plan` applying it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS

from edgeq import reference
from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.cli_pack import to_nhwc
from edgeq.planner import solve_exhaustive, solve_milp

MODEL = str(DIGITS_MODELS / "cnn_fp32.pt2")
CALIB = str(DIGITS_MODELS / "cnn_data.npz")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def uniform_i8_bytes(tmp_path_factory) -> int:
    out = tmp_path_factory.mktemp("plan") / "i8.edgeq"
    res = cli("pack", MODEL, "-f", "i8", "--calib", CALIB, "--tests", "0", "-o", str(out))
    assert res.exit_code == 0, res.output
    return out.stat().st_size


@pytest.mark.parametrize("fraction,latency_ms", [(0.65, 30.0), (0.5, None)])
def test_plan_fits_budget_and_pack_applies_it(tmp_path, uniform_i8_bytes, fraction, latency_ms):
    budget_kb = round(uniform_i8_bytes * fraction / 1024, 1)
    budget = int(budget_kb * 1024)
    args = ["plan", "--target", "stm32l4", MODEL, "--calib", CALIB, "--budget-kb", str(budget_kb),
            "-o", str(tmp_path / "plan.json"), "--json"]
    if latency_ms:
        args += ["--max-latency-ms", str(latency_ms)]
    res = cli(*args)
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output)
    assert json.loads((tmp_path / "plan.json").read_text()) == plan
    chosen, uniform = plan["plan"], {c["label"]: c for c in plan["uniform"]}
    assert chosen["blob_bytes"] <= budget < uniform_i8_bytes and chosen["fits"]
    assert not uniform["uniform i8"]["fits"]
    if latency_ms:
        assert chosen["latency_ms"] <= latency_ms and chosen["latency_source"] == "modelled"
    # uniform t2/q4 are reported with their measured accuracy and whether they fit the same budget
    for fmt in ("t2", "q4"):
        u = uniform[f"uniform {fmt}"]
        assert u["fits"] == (u["blob_bytes"] <= budget and (not latency_ms or u["latency_ms"] <= latency_ms))
        assert 0 < u["accuracy"] <= 1
    fitting = [u["accuracy"] for u in uniform.values() if u["fits"]]
    assert fitting and chosen["accuracy"] >= max(fitting) - 0.01
    assert len(set(plan["layers"].values())) > 1  # really mixed at these budgets
    # the plan file packs to exactly that blob, and its accuracy is what the planner measured
    blob = tmp_path / "plan.edgeq"
    res = cli("pack", MODEL, "--plan", str(tmp_path / "plan.json"), "--calib", CALIB, "--tests", "0", "-o", str(blob))
    assert res.exit_code == 0, res.output
    assert blob.stat().st_size == chosen["blob_bytes"] <= budget
    g = read_blob(blob).graph
    assert g.metadata["recipe"]["layers"] == plan["layers"]
    data = np.load(CALIB)
    out = reference.run(g, [to_nhwc(data["x_test"], g.tensors[g.inputs[0]].shape)])[0]
    assert float(np.mean(out.argmax(1) == data["y_test"])) == pytest.approx(chosen["accuracy"])


def test_integer_program_equals_exhaustive_search():
    rng = np.random.default_rng(0)
    layers, formats = [f"l{i}" for i in range(5)], ("t158", "t2", "q4", "i8")
    sens = {"loss": {n: {f: float(rng.uniform(0, 1)) * (f != "i8") for f in formats} for n in layers},
            "bytes": {n: {f: int(rng.integers(100, 5000)) for f in formats} for n in layers},
            "seconds": {n: {f: float(rng.uniform(0, 1e-3)) for f in formats} for n in layers},
            "fixed_bytes": 1000, "other_seconds": 1e-4}
    for max_bytes, max_s in [(9000, None), (12000, 2e-3), (30000, 3e-3), (1500, None)]:
        assert solve_milp(layers, formats, sens, max_bytes, max_s) == solve_exhaustive(layers, formats, sens,
                                                                                       max_bytes, max_s)
    assert solve_milp(layers, formats, sens, 1500, None) is None


def test_plan_errors(tmp_path):
    res = cli("plan", "--target", "stm32l4", MODEL, "--calib", CALIB, "--budget-kb", "2")
    assert res.exit_code == 2 and "nothing fits 2,048 bytes" in res.output and "smallest" in res.output
    res = cli("plan", "--target", "xc7z020", MODEL, "--calib", CALIB)
    assert res.exit_code == 2 and "FPGA" in res.output
    (tmp_path / "p.json").write_text(json.dumps({"edgeq_plan": 1, "layers": {"conv2d": "t2"}}))
    res = cli("pack", MODEL, "--plan", str(tmp_path / "p.json"), "-o", str(tmp_path / "x.edgeq"))
    assert res.exit_code == 2 and "conv2d_1" in res.output and not (tmp_path / "x.edgeq").exists()
    (tmp_path / "p.json").write_text("{")
    res = cli("pack", MODEL, "--plan", str(tmp_path / "p.json"), "-o", str(tmp_path / "x.edgeq"))
    assert res.exit_code == 2 and "cannot read plan" in res.output
