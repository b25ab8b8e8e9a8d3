"""ExecuTorch interop: `edgeq export-pte` (fp32 and 8da4w through XNNPACK) run by executorch.runtime, and
`edgeq compare` putting edgeq, ExecuTorch and LiteRT side by side. Skipped without the executorch extra."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import DIGITS_MODELS, ROOT

pytest.importorskip("executorch.runtime")

from edgeq import reference
from edgeq.cli import main
from edgeq.cli_pack import to_nhwc
from edgeq.executorch_interop import PteRunner
from edgeq.importers.torch_export import from_pt2
from edgeq.packer import Recipe, pack

MODEL = DIGITS_MODELS / "mlp_fp32.pt2"
DATA = DIGITS_MODELS / "mlp_data.npz"


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def torch_outputs(x: np.ndarray) -> np.ndarray:
    program = torch.export.load(str(MODEL)).module()
    with torch.no_grad():
        return np.concatenate([program(torch.from_numpy(x[i:i + 1])).numpy() for i in range(len(x))])


def test_export_pte_fp32_and_8da4w(tmp_path):
    x = np.load(DATA)["x_test"][:40]
    expected = torch_outputs(x)
    sizes = {}
    for quant in ("fp32", "8da4w"):
        res = cli("export-pte", MODEL, "-o", tmp_path / f"{quant}.pte", "--quant", quant)
        assert res.exit_code == 0, res.output
        sizes[quant] = (tmp_path / f"{quant}.pte").stat().st_size
        run = PteRunner(tmp_path / f"{quant}.pte")
        got = np.concatenate([run(x[i:i + 1]) for i in range(len(x))])
        if quant == "fp32":
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        else:  # int4 weights: close, not equal, and mostly the same answers
            assert not np.allclose(got, expected, atol=1e-4)
            assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
    assert sizes["8da4w"] < 0.4 * sizes["fp32"]  # 4-bit weights really stored (MLP: all layers linear)


def test_compare_side_by_side(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import make_tflite
    from tflite.ActivationFunctionType import ActivationFunctionType as Act

    m = make_tflite.ModelBuilder(5)
    f, q = m.quantize_input((1, 64), scale=1 / 255, zero=-128)
    y = m.fully_connected(q, 32, Act.RELU)
    (tmp_path / "mlp.tflite").write_bytes(m.serialize([f], [m.dequantize(m.fully_connected(y, 10))]))
    res = cli("compare", MODEL, "--calib", DATA, "-f", "i8", "--tflite", tmp_path / "mlp.tflite", "--runs", "5",
              "--warmup", "1", "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    rows = {(r["runtime"], r["variant"]): r for r in result["rows"]}
    assert set(rows) == {("float reference", "fp32 (numpy)"), ("edgeq (C runtime)", "i8"),
                         ("ExecuTorch (XNNPACK)", "fp32"), ("ExecuTorch (XNNPACK)", "8da4w"), ("LiteRT", "mlp.tflite")}
    for r in result["rows"][1:]:
        assert r["latency"]["source"] == "measured" and r["latency"]["n"] == 5 and r["latency"]["p50_ms"] > 0
        assert r["bytes"] > 0
    data = np.load(DATA)
    y_test = data["y_test"]
    fg = from_pt2(MODEL)
    g = pack(fg, to_nhwc(data["x"], fg.input_shape), Recipe("i8"))
    edgeq_acc = float(np.mean(reference.run(g, [data["x_test"]])[0].argmax(1) == y_test))
    assert rows[("edgeq (C runtime)", "i8")]["accuracy"] == pytest.approx(edgeq_acc)
    torch_acc = float(np.mean(torch_outputs(data["x_test"]).argmax(1) == y_test))
    assert rows[("ExecuTorch (XNNPACK)", "fp32")]["accuracy"] == pytest.approx(torch_acc)
    assert rows[("ExecuTorch (XNNPACK)", "8da4w")]["accuracy"] > 0.8
    assert 0 <= rows[("LiteRT", "mlp.tflite")]["accuracy"] <= 1  # random weights: only that it ran on all inputs


def test_errors(tmp_path):
    res = cli("export-pte", tmp_path / "missing.pt2", "-o", tmp_path / "x.pte")
    assert res.exit_code == 2 and "no such model file" in res.output
    (tmp_path / "bad.pt2").write_bytes(b"not a zip")
    res = cli("export-pte", tmp_path / "bad.pt2", "-o", tmp_path / "x.pte")
    assert res.exit_code == 2 and "not a torch.export" in res.output and not (tmp_path / "x.pte").exists()
    res = cli("compare", MODEL, "--calib", DATA, "-f", "t9")
    assert res.exit_code == 2 and "unknown format" in res.output
