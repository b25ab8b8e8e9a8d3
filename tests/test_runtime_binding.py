"""Python binding (ctypes) and `edgeq run` / `edgeq bench` on the host C runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.errors import BlobError
from edgeq.runtime import Session


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
