"""Python binding (ctypes) and `edgeq run` / `edgeq bench` on the host C runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import runtime_graphs as RG
from click.testing import CliRunner

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.blob import read_blob, write_blob
from edgeq.cli import main
from edgeq.errors import BlobError
from edgeq.runtime import Session, sanitizer_env


def test_session_matches_reference_and_digits_predictions(mlp_t2_blob):
    g = read_blob(mlp_t2_blob).graph
    x = g.tensors[g.test_tensors(L.TENSOR_TEST_INPUT)[0]].array
    s = Session(mlp_t2_blob)
    out = s.run([x])[0]
    np.testing.assert_array_equal(out, reference.run(g, [x])[0])
    assert s.arena_size > 0 and [t[1] for t in s.layer_times][:2] == ["quantize", "linear"]


def test_corrupt_blob_raises_with_the_c_message(mlp_t2_blob, tmp_path):
    bad = tmp_path / "bad.edgeq"
    data = bytearray(mlp_t2_blob.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(BlobError, match="checksum mismatch"):
        Session(bad)


def test_run_and_bench_cli(mlp_t2_blob, tmp_path):
    g = read_blob(mlp_t2_blob).graph
    x = g.tensors[g.test_tensors(L.TENSOR_TEST_INPUT)[0]].array[:4]
    np.save(tmp_path / "x.npy", x)
    res = CliRunner().invoke(main, ["run", str(mlp_t2_blob), "--input", str(tmp_path / "x.npy"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["top1"] == reference.run(g, [x])[0].argmax(1).tolist()
    res = CliRunner().invoke(main, ["bench", str(mlp_t2_blob), "--runs", "5", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["latency"]["source"] == "measured" and info["latency"]["n"] == 5 and info["arena_bytes"] > 0


# ---- every op, format and scale kind, against the numpy reference executor ------------------------


@pytest.mark.parametrize("tier", ["ref", "avx2", "avxvnni"])
@pytest.mark.parametrize("config", RG.CONFIGS, ids=lambda c: f"{c[0]}-{'row' if c[1] == 1 else 'block'}-{c[2]}")
def test_all_ops_bit_exact_with_reference(tmp_path, config, tier):
    if tier == "avxvnni" and "avx_vnni" not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip("no AVX-VNNI on this CPU")
    fmt, kind, block, zeros = config
    g = RG.all_ops_graph(7, fmt, kind, block, zeros)
    write_blob(g, tmp_path / "g.edgeq")
    x = np.random.default_rng(1).normal(0, 1.5, (70, 7, 6, 3)).astype(np.float32)  # > 64: kernel tiles chunk
    kernels = RG.check_session_matches_reference(tmp_path / "g.edgeq", g, x, tier=tier, threads=2, max_batch=70)
    assert all(k.startswith((tier + "/", "ref")) for k in kernels), kernels
    assert any(k.endswith("b1_xnor") for k in kernels)
    RG.check_session_matches_reference(tmp_path / "g.edgeq", g, x[:3], tier=tier, threads=1, max_batch=1)


def test_all_ops_under_asan_and_ubsan(tmp_path):
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
import numpy as np, runtime_graphs as RG
from edgeq.blob import write_blob
for i, (fmt, kind, block, zeros) in enumerate(RG.CONFIGS):
    g = RG.all_ops_graph(i, fmt, kind, block, zeros)
    write_blob(g, {str(tmp_path)!r} + '/g.edgeq')
    x = np.random.default_rng(i).normal(0, 1.5, (66, 7, 6, 3)).astype(np.float32)
    for tier in ('ref', 'auto'):
        RG.check_session_matches_reference({str(tmp_path)!r} + '/g.edgeq', g, x, tier=tier, threads=2, max_batch=66,
                                           sanitize=True)
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], env=sanitizer_env(), capture_output=True, text=True, timeout=900,
                         check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


@pytest.mark.parametrize("tier,threads", [("ref", 1), ("auto", 2)])
def test_digits_blobs_match_reference(mlp_t2_blob, tmp_path, tier, threads):
    from conftest import digits_blob_graph

    for stem, fmt, recipe in [("cnn_t2_qat", "t2", {}), ("bnn_b1_qat", "b1", {"first_last_i8": True}),
                              ("mlp_q4_qat", "q4", {})]:
        g, _, x_test, _ = digits_blob_graph(stem, fmt, n_tests=4, **recipe)
        write_blob(g, tmp_path / f"{stem}.edgeq")
        RG.check_session_matches_reference(tmp_path / f"{stem}.edgeq", g, x_test[:40], tier=tier, threads=threads,
                                           max_batch=16)


@pytest.mark.parametrize("tier,flag", [("avx2", "avx2"), ("avxvnni", "avx_vnni")])
def test_kernel_tier_names_the_tier_that_runs(mlp_t2_blob, tier, flag):
    if flag not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip(f"no {flag} on this CPU")
    s = Session(mlp_t2_blob, tier=tier)
    s.run([np.zeros((1, *s.inputs[0].sample_shape), s.inputs[0].dtype)])
    assert s.kernel_tier == tier
    assert {k.split("/")[0] for _, _, k, _ in s.layer_times} <= {tier, "ref"}
