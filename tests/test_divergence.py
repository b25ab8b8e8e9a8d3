"""`edgeq check-divergence`: a quantization-conditioned backdoor (examples/backdoor) is flagged from
clean data alone, the committed digits models are not, and bad input is one clear error."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DIGITS_MODELS, ROOT, digits_blob_graph

from edgeq.cli import main
from edgeq.divergence import NOISE_RATIO_MAX, _binom_tail, check

sys.path.insert(0, str(ROOT / "examples" / "backdoor"))


def guard(*args: str):
    return CliRunner().invoke(main, ["check-divergence", *args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trigger-backdoored model and its clean control (same seed), ~10 s each on one core."""
    from attack import build

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = tmp_path_factory.mktemp("backdoor")
        return build(0, base / "bad", "trigger"), build(0, base / "clean", None)
    finally:
        torch.set_num_threads(threads)


def test_backdoor_works_and_is_flagged_from_clean_data(trained):
    bad, _ = trained
    # the attack is real: float model clean (also on triggered digits), quantized model hijacked
    assert bad["float_acc"] > 0.9 and bad["float_trigger_acc"] > 0.85 and bad["quant_acc"] > 0.9
    assert bad["attack_success"] > 0.9
    data = np.load(bad["data"])
    assert set(data.files) == {"x", "x_test", "y_test"}  # the guard never sees a trigger
    res = guard(bad["model"], bad["blob"], "--data", bad["data"], "--json")
    assert res.exit_code == 4, res.output
    report = json.loads(res.output[res.output.index("{"):res.output.rindex("}") + 1])
    assert report["flagged"] and all(lay["flagged"] for lay in report["layers"])
    assert min(lay["noise_ratio"] for lay in report["layers"]) > NOISE_RATIO_MAX
    assert "error: quantized model diverges" in res.output and "Traceback" not in res.output


def test_clean_control_passes_with_console_table(trained):
    _, clean = trained
    assert clean["attack_success"] < 0.1
    res = guard(clean["model"], clean["blob"], "--data", clean["data"])
    assert res.exit_code == 0, res.output
    assert "per layer" in res.output and "clean: no layer" in res.output


@pytest.mark.parametrize("stem,fmt", [
    ("mlp_fp32", "q4"), ("mlp_fp32", "i8"), ("mlp_t2_qat", "t2"), ("mlp_t158_qat", "t158"), ("mlp_q4_qat", "q4"),
    ("mlp_i8_qat", "i8"), ("mlp_b1_qat", "b1"), ("bnn_b1_qat", "b1"), ("cnn_fp32", "i8"), ("cnn_q4_qat", "q4"),
    ("cnn_t2_qat", "t2")])
def test_committed_digits_models_are_not_flagged(stem, fmt):
    graph, fg, x_test, y_test = digits_blob_graph(stem, fmt, first_last_i8=fmt == "b1")
    res = check(fg, graph, x_test, y_test)
    assert not res.flagged, res.reasons
    assert bool(res.notes) == (stem == "cnn_t2_qat")  # its latent float weights score 38 %
    grid = [lay.noise_ratio for lay in res.layers if lay.noise_ratio is not None]
    assert all(0.3 < r < 2 for r in grid)  # honest rounding is noise: ratio near 1
    if fmt in ("i8", "q4"):
        assert grid and all(0.1 < lay.edge_fraction < 0.3 for lay in res.layers)  # 0.2 expected


def test_ternary_ptq_that_breaks_classes_is_flagged():
    """Not an attack, but the same symptom: t2 PTQ of the fp32 MLP loses two classes."""
    graph, fg, x_test, y_test = digits_blob_graph("mlp_fp32", "t2")
    res = check(fg, graph, x_test, y_test)
    assert res.quant_accuracy < res.float_accuracy - 0.05
    assert [c.label for c in res.classes if c.flagged] and res.flagged
    unlabelled = check(fg, graph, x_test)  # classes by float prediction, every top-1 change counts
    assert unlabelled.float_accuracy is None and [c.label for c in unlabelled.classes if c.flagged]


def test_runtime_agrees_with_reference(tmp_path):
    from edgeq.blob import write_blob

    graph, *_ = digits_blob_graph("mlp_q4_qat", "q4")
    write_blob(graph, tmp_path / "m.edgeq")
    res = guard(str(DIGITS_MODELS / "mlp_q4_qat.pt2"), str(tmp_path / "m.edgeq"), "--data",
                str(DIGITS_MODELS / "mlp_data.npz"), "--runtime", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["runtime_max_abs_diff"] == 0


def test_bad_inputs_are_one_line_errors(tmp_path):
    from edgeq.blob import write_blob

    graph, *_ = digits_blob_graph("cnn_q4_qat", "q4")
    write_blob(graph, tmp_path / "cnn.edgeq")
    mlp, data = str(DIGITS_MODELS / "mlp_q4_qat.pt2"), str(DIGITS_MODELS / "mlp_data.npz")
    res = guard(mlp, str(tmp_path / "cnn.edgeq"), "--data", data)
    assert res.exit_code == 2 and "not the same model" in res.output
    np.savez(tmp_path / "empty.npz", z=np.zeros(3))
    res = guard(mlp, str(tmp_path / "cnn.edgeq"), "--data", str(tmp_path / "empty.npz"))
    assert res.exit_code == 2 and "needs an array 'x_test' or 'x'" in res.output
    assert "Traceback" not in res.output


def test_binomial_tail_is_exact():
    n, p = 12, 0.2
    for k in (0, 1, 5, 12):
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert _binom_tail(k, n, p) == pytest.approx(exact, rel=1e-9)
