"""`edgeq pack / inspect / dequant` through click and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from conftest import DIGITS_MODELS, ROOT

from edgeq.cli import main


def test_pack_inspect_dequant(tmp_path):
    out = tmp_path / "cnn.edgeq"
    runner = CliRunner()
    res = runner.invoke(main, ["pack", str(DIGITS_MODELS / "cnn_t2_qat.pt2"), "-f", "t2",
                               "--calib", str(DIGITS_MODELS / "cnn_data.npz"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    info = json.loads(runner.invoke(main, ["inspect", str(out), "--json"]).output)
    weights = [t for t in info["tensors"] if "bits_per_weight" in t]
    assert [t["format"] for t in weights] == ["t2"] * 4
    assert info["weights"]["compression_vs_fp32"] > 4
    assert info["checks"]["file_crc"] == "ok"
    npy = tmp_path / "w.npy"
    res = runner.invoke(main, ["dequant", str(out), weights[1]["name"], "-o", str(npy)])
    assert res.exit_code == 0, res.output
    w = np.load(npy)
    assert w.shape == tuple(weights[1]["shape"]) and w.dtype == np.float32
    assert len(np.unique(np.round(w, 6))) <= 3  # ternary: {-s, 0, +s}


def test_unknown_format_and_missing_model_are_clear(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["pack", str(DIGITS_MODELS / "mlp_fp32.pt2"), "-f", "t3", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "Invalid value for '-f'" in res.output
    res = runner.invoke(main, ["pack", str(tmp_path / "nope.pt2"), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no such model file" in res.output
    res = runner.invoke(main, ["dequant", str(tmp_path / "nope.edgeq"), "w", "-o", str(tmp_path / "w.npy")])
    assert res.exit_code == 2 and res.output.startswith("error: ")
    assert not (tmp_path / "x").exists()


def test_console_script_runs(tmp_path):
    out = tmp_path / "mlp.edgeq"
    res = subprocess.run(check=False, args=[sys.executable, "-m", "edgeq.cli", "pack", str(DIGITS_MODELS / "mlp_q4_qat.pt2"),
                          "-f", "q4", "--group", "64", "--calib", str(DIGITS_MODELS / "mlp_data.npz"), "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert out.exists()
    ver = subprocess.run(check=False, args=[sys.executable, "-m", "edgeq.cli", "--version"], capture_output=True, text=True)
    assert "edgeq" in ver.stdout
