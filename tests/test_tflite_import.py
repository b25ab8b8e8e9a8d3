""".tflite import: int8 models written with the flatbuffer schema (tests/data/make_tflite.py) run
in TFLite's interpreter (ai-edge-litert, or tflite-runtime) and in edgeq's reference executor on
the same inputs. With TFLite's reference kernels every conv / depthwise / pool / add / reshape
output is bit-identical and fully-connected outputs are within one step (TFLite rounds their
requantization once, edgeq twice: docs/interop.md); with the default (XNNPACK) kernels and for
softmax, within one int8 step."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT

pytest.importorskip("tflite")
try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:  # the predecessor, where it still works
    tflite_runtime = pytest.importorskip("tflite_runtime.interpreter")
    Interpreter, OpResolverType = tflite_runtime.Interpreter, tflite_runtime.OpResolverType

sys.path.insert(0, str(ROOT / "tests" / "data"))
import make_tflite

from edgeq import reference
from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.errors import EdgeqError
from edgeq.importers.tflite_import import from_tflite

N = 40
pytestmark = pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")  # debugging aid, used on purpose


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_tflite.write_all(tmp_path_factory.mktemp("tflite"))


def _inputs(it, n: int = N) -> np.ndarray:
    d = it.get_input_details()[0]
    rng = np.random.default_rng(1)
    shape = (n, *d["shape"][1:])
    if d["dtype"] == np.int8:
        return rng.integers(-128, 128, shape).astype(np.int8)
    return (rng.standard_normal(shape) * 2).astype(np.float32)


def run_tflite(path, xs, resolver) -> dict[str, np.ndarray]:
    """Every named tensor of the model, per input (batch 1 each, stacked)."""
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    found: dict[str, list] = {}
    for x in xs:
        it.set_tensor(d["index"], x[None])
        it.invoke()
        for t in it.get_tensor_details():
            if t["name"] and "." not in t["name"]:  # activations (weights are named layer.weight)
                found.setdefault(t["name"], []).append(it.get_tensor(t["index"])[0])
    return {k: np.stack(v) for k, v in found.items()}


def run_edgeq(graph, xs) -> dict[str, np.ndarray]:
    values = reference.run(graph, [xs], keep_all=True)
    return {graph.tensors[i].name: v for i, v in values.items() if graph.tensors[i].array is None}


def _steps(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_int8_tensors_equal_tflite_reference_kernels(models, name):
    g = from_tflite(models[name])
    it = Interpreter(model_path=str(models[name]))
    xs = _inputs(it)
    ours = run_edgeq(g, xs)
    theirs = run_tflite(models[name], xs, OpResolverType.BUILTIN_REF)
    int8 = [k for k, v in theirs.items() if v.dtype == np.int8 and k in ours and ours[k].dtype == np.int8]
    assert len(int8) >= 6
    linear = {g.tensors[op.outputs[0]].name for op in g.ops if op.name == "linear"}
    for k in int8:
        assert len(np.unique(theirs[k])) > 8, k  # not a saturated / constant tensor: the test means something
        if k in linear:  # TFLite's FULLY_CONNECTED rounds once, edgeq (TFLite's MBQM) twice: docs/interop.md
            assert _steps(ours[k], theirs[k]) <= 1 and (ours[k] != theirs[k]).mean() < 0.05, k
        else:
            assert _steps(ours[k], theirs[k]) == 0, k
    fast = run_tflite(models[name], xs, OpResolverType.AUTO)  # XNNPACK rounds in fp32: one step allowed
    out = g.tensors[g.outputs[0]].name
    if ours[out].dtype == np.int8:
        assert _steps(ours[out], fast[out]) <= 1


def test_softmax_within_one_step(models):
    g = from_tflite(models["cnn"])
    xs = _inputs(Interpreter(model_path=str(models["cnn"])))
    probs = reference.run(g, [xs])[0]
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    for resolver in (OpResolverType.BUILTIN_REF, OpResolverType.AUTO):
        q = run_tflite(models["cnn"], xs, resolver)["probs"]
        tflite_probs = (q.astype(np.float32) + 128) / 256  # TFLite's int8 softmax output: scale 1/256, zp -128
        assert np.abs(tflite_probs - probs).max() <= 1 / 256 + 1e-6
        assert (np.argmax(tflite_probs, 1) == np.argmax(probs, 1)).mean() >= 0.9


def test_int4_weights_and_float_io_within_one_step(models):
    g = from_tflite(models["mlp_int4"])
    assert [op.name for op in g.ops] == ["quantize", "linear", "linear", "dequantize"]
    w4 = next(t for t in g.tensors if t.name == "fc1.weight").packed
    assert w4.name == "i8" and w4.int_values().min() >= -8 and w4.int_values().max() <= 7
    xs = _inputs(Interpreter(model_path=str(models["mlp_int4"])))
    ours = run_edgeq(g, xs)
    theirs = run_tflite(models["mlp_int4"], xs, OpResolverType.BUILTIN_REF)
    assert _steps(ours["input_q"], theirs["input_q"]) <= 1
    assert _steps(ours["fc1"], theirs["fc1"]) <= 1  # FULLY_CONNECTED: one rounding vs two
    out_scale = g.tensors[g.ops[-1].inputs[0]].qscale
    assert np.abs(ours["output_f32"] - theirs["output_f32"]).max() <= out_scale * 1.0001


def test_pack_cli_writes_a_blob_that_runs_the_same(models, tmp_path):
    out = tmp_path / "cnn.edgeq"
    runner = CliRunner()
    res = runner.invoke(main, ["pack", str(models["cnn"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    blob = read_blob(out)
    assert blob.metadata["source"] == "tflite"
    assert [t.packed.name for t in blob.graph.tensors if t.packed is not None] == ["i8"] * 3
    xs = _inputs(Interpreter(model_path=str(models["cnn"])), 8)
    assert np.array_equal(reference.run(blob.graph, [xs])[0], reference.run(from_tflite(models["cnn"]), [xs])[0])
    res = runner.invoke(main, ["pack", str(models["cnn"]), "-f", "t2", "-o", str(tmp_path / "x.edgeq")])
    assert res.exit_code == 2 and "already quantized" in res.output


def test_unsupported_op_is_named_with_its_index(models):
    with pytest.raises(EdgeqError) as err:
        from_tflite(models["unsupported"])
    msg = str(err.value)
    assert "unsupported op(s) #1 TANH" in msg
    assert "supported: ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D" in msg


def test_malformed_tflite_is_refused(models, tmp_path):
    good = models["residual"].read_bytes()
    bad = tmp_path / "bad.tflite"
    for data, expected in [(b"", "no TFL3"), (good[:4] + b"XXXX" + good[8:], "no TFL3"), (good[:64], "malformed")]:
        bad.write_bytes(data)
        with pytest.raises(EdgeqError, match=expected):
            from_tflite(bad)
    rng = np.random.default_rng(9)
    refused = 0
    for _ in range(200):  # flips and truncations: an import or an EdgeqError, never anything else
        data = bytearray(good)
        if rng.random() < 0.3:
            data = data[: max(8, int(rng.integers(0, len(good))))]
        else:
            for at in rng.integers(8, len(data), rng.integers(1, 4)):
                data[at] = rng.integers(0, 256)
        bad.write_bytes(bytes(data))
        try:
            from_tflite(bad)
        except EdgeqError:
            refused += 1
    assert refused > 20
