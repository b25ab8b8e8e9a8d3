"""The C runtime (edgeq_runner) is bit-exact with the numpy reference executor, on the host (optimised
and ASan+UBSan builds) and cross-built for rpi5 under qemu-aarch64; bad blobs are refused, never crash."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, digits_blob_graph
from test_blob import corruptions

from edgeq.blob import layout as L
from edgeq.blob import write_blob
from edgeq.build import build_runtime
from edgeq.targets.registry import get_target

CASES = [("mlp_fp32", "t2", {}), ("mlp_fp32", "t158", {}), ("mlp_q4_qat", "q4", {}), ("mlp_fp32", "i8", {}),
         ("mlp_b1_qat", "b1", {"first_last_i8": True}), ("bnn_b1_qat", "b1", {"first_last_i8": True}),
         ("cnn_t2_qat", "t2", {}), ("cnn_fp32", "q4", {"group": 64}), ("cnn_fp32", "b1", {})]


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> dict[str, Path]:
    out = {}
    d = tmp_path_factory.mktemp("rt")
    for stem, fmt, recipe in CASES:
        graph, *_ = digits_blob_graph(stem, fmt, n_tests=12, **recipe)
        path = d / f"{stem}_{fmt}.edgeq"
        write_blob(graph, path)
        out[path.stem] = path
    return out


@pytest.fixture(scope="module")
def asan_runner(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("asan")
    subprocess.run(["make", "-s", "-C", str(ROOT / "runtimes"), f"BUILD={build}", "SANITIZE=1", f"{build}/edgeq_runner"],
                   check=True, capture_output=True)
    return build / "edgeq_runner"


def run(runner: Path, blob: Path, wrapper: tuple[str, ...] = ()) -> tuple[int, dict]:
    res = subprocess.run([*wrapper, str(runner), str(blob), "--runs", "2", "--warmup", "1"], capture_output=True,
                         text=True, timeout=300, check=False)
    assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout)


def expected(blob: Path) -> np.ndarray:
    from edgeq.blob import read_blob

    g = read_blob(blob).graph
    return np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array)


def check_bit_exact(runner: Path, blobs: dict[str, Path], wrapper: tuple[str, ...] = ()) -> None:
    for name, blob in blobs.items():
        code, out = run(runner, blob, wrapper)
        assert code == 0, (name, out)
        want = expected(blob)
        got = np.asarray(out["outputs"], np.float32).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert out["arena_bytes"] > 0 and len(out["runs_ns"]) == 2


def test_host_runner_bit_exact(blobs):
    check_bit_exact(build_runtime(get_target("host")).runner, blobs)


def test_sanitized_runner_bit_exact(blobs, asan_runner):
    check_bit_exact(asan_runner, blobs)


def test_rpi5_build_under_qemu_bit_exact(blobs):
    runner = build_runtime(get_target("rpi5")).runner
    assert runner.read_bytes()[:4] == b"\x7fELF" and runner.read_bytes()[18] == 183  # EM_AARCH64
    subset = {k: v for k, v in blobs.items() if k in ("cnn_t2_qat_t2", "bnn_b1_qat_b1", "mlp_q4_qat_q4")}
    check_bit_exact(runner, subset, ("qemu-aarch64", "-cpu", "cortex-a76"))


def test_corrupt_blobs_are_refused_without_crashing(blobs, asan_runner, tmp_path):
    buf = blobs["mlp_fp32_t2"].read_bytes()
    for name, (data, _) in corruptions(buf).items():
        path = tmp_path / "bad.edgeq"
        path.write_bytes(bytes(data))
        code, out = run(asan_runner, path)
        assert code == 2 and out["error"], name


def test_graph_errors_have_specific_codes(blobs, asan_runner, tmp_path):
    from test_blob import _reseal, _sections

    buf = bytearray(blobs["mlp_fp32_i8"].read_bytes())
    _, goff, _ = _sections(bytes(buf))[L.SECTION_GRAPH]
    first_op, second_op = goff + 80, goff + 80 + 104
    swapped = bytearray(buf)  # the second op before the first: its input is not produced yet
    swapped[first_op:second_op], swapped[second_op:second_op + 104] = buf[second_op:second_op + 104], buf[first_op:second_op]
    path = tmp_path / "order.edgeq"
    path.write_bytes(bytes(_reseal(swapped)))
    code, out = run(asan_runner, path)
    assert code == 2 and out["code"] == 205 and "used before it is produced" in out["error"]


def test_runner_raw_inputs_output_files_and_layers(blobs, tmp_path):
    from edgeq import reference
    from edgeq.blob import read_blob
    from edgeq.runtime import runner_path

    blob = blobs["mlp_fp32_t2"]
    g = read_blob(blob).graph
    x = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_INPUT)[0]].array[:3], "<f4")
    x.tofile(tmp_path / "in0.bin")
    res = subprocess.run([str(runner_path()), str(blob), "--input", str(tmp_path / "in0.bin"), "--batch", "3",
                          "--outputs", str(tmp_path), "--runs", "2", "--warmup", "0", "--threads", "2", "--tier", "ref",
                          "--no-tests"], capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(res.stdout)
    want = reference.run(g, [x])[0]
    assert out["kernel_tier"] == "ref" and out["tests"] == 0 and out["input_run"]["batch"] == 3
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out0.bin", "<f4").reshape(want.shape), want)
    np.testing.assert_array_equal(np.asarray(out["input_run"]["outputs"][0], np.float32).reshape(want.shape), want)
    assert [layer["op"] for layer in out["layers"]] == ["quantize", "linear", "linear", "linear"]
    assert all(len(layer["runs_ns"]) == 2 and layer["kernel"].startswith("ref") for layer in out["layers"])
    usage = subprocess.run([str(runner_path())], capture_output=True, text=True, check=False)
    assert usage.returncode == 64 and "usage" in usage.stderr
