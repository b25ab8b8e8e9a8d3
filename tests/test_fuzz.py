"""Fuzzing (docs/security.md): each harness runs for a bounded time and must find no crash; every
reproducer a campaign found (tests/data/fuzz/) replays cleanly through the fuzz harness, the normal
and the ASan runtime (C ones) or the reader and importers (Python ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools" / "fuzz"))
import run_fuzz

from edgeq.errors import EdgeqError

REPRODUCERS = ROOT / "tests" / "data" / "fuzz"
C_CASES = sorted(REPRODUCERS.glob("c-*"))
PY_CASES = sorted(REPRODUCERS.glob("py-*"))
SECONDS = int(os.environ.get("EDGEQ_FUZZ_TEST_SECONDS", "30"))
# Floors well under what 30 s reach on a loaded 2-core machine (C ~1300 edges, Python ~550), well
# over what an input that never gets past the header reaches: the seeds must load and run.
MIN_COVERAGE = {"c": 700, "python": 400}


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> Path:
    return run_fuzz.seeds(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.fuzz
@pytest.mark.parametrize("harness", ["c", "python"])
def test_bounded_run_finds_no_crash(harness, tmp_path, seed_dir):
    r = run_fuzz.run(harness, tmp_path, SECONDS, None, seed_dir)
    assert not r.crashes, f"{r.line()}\n" + (tmp_path / f"{harness}.log").read_text()[-4000:]
    assert r.executions > 500, r.line()
    assert r.coverage >= MIN_COVERAGE[harness], r.line()


@pytest.mark.skipif(not C_CASES, reason="no C reproducers")
def test_c_reproducers_replay_in_the_fuzz_harness():
    res = subprocess.run([str(run_fuzz.build_c_harness()), *map(str, C_CASES)], capture_output=True, text=True,
                         check=False, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]


REPLAY = """
import sys
import numpy as np
from edgeq.errors import EdgeqError
from edgeq.runtime import Session
for path in sys.argv[1:]:
    outs = []
    for tier in ("ref", "auto"):
        try:
            s = Session(path, tier=tier, sanitize=SANITIZE)
        except EdgeqError:
            break
        rng = np.random.default_rng(0)
        x = [rng.normal(0, 2, (1, *t.sample_shape)).astype(t.dtype) if t.dtype.kind == "f"
             else rng.integers(-128, 128, (1, *t.sample_shape)).astype(t.dtype) for t in s.inputs]
        outs.append(s.run(x))
    if len(outs) == 2:
        for a, b in zip(*outs):
            np.testing.assert_array_equal(a, b, err_msg=path)
print("ok")
"""


@pytest.mark.skipif(not C_CASES, reason="no C reproducers")
@pytest.mark.parametrize("sanitize", [False, True], ids=["runtime", "asan-runtime"])
def test_c_reproducers_replay_through_the_runtime(sanitize):
    """The stored reproducers carry valid CRCs, so the normal runtime reaches the same code: each
    loads and runs (reference and SIMD tiers equal) or is refused with an EdgeqError."""
    from edgeq.runtime import sanitizer_env

    env = {**(sanitizer_env() if sanitize else os.environ), "PYTHONPATH": str(ROOT)}
    code = REPLAY.replace("SANITIZE", str(sanitize))
    res = subprocess.run([sys.executable, "-c", code, *map(str, C_CASES)], env=env, capture_output=True, text=True,
                         check=False, timeout=900)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-4000:]


@pytest.mark.skipif(not PY_CASES, reason="no Python reproducers")
@pytest.mark.parametrize("path", PY_CASES, ids=lambda p: p.name)
def test_python_reproducers_raise_edgeq_error(path):
    """Each input once made a parser raise something other than EdgeqError; now it is a clear EdgeqError."""
    from edgeq.blob import read_blob
    from edgeq.importers.gguf_import import from_gguf_file
    from edgeq.importers.tflite_import import from_tflite

    head = path.read_bytes()[:4]
    read = read_blob if head == b"EDGQ" else from_gguf_file if head == b"GGUF" else from_tflite
    with pytest.raises(EdgeqError) as e:
        read(path)
    assert "\n" not in str(e.value) and str(e.value)


def test_structure_aware_mutator_changes_one_record_field():
    """The Python harness's blob mutator edits inside TENSORS/GRAPH only, one field at a time."""
    pytest.importorskip("atheris")
    import random

    import fuzz_python

    seed = C_CASES[0].read_bytes() if C_CASES else None
    if seed is None:
        pytest.skip("no seed blob")
    changed = 0
    for i in range(200):
        out = fuzz_python.mutate_record(seed, random.Random(i))
        assert out is not None and len(out) == len(seed)
        diff = np.flatnonzero(np.frombuffer(out, np.uint8) != np.frombuffer(seed, np.uint8))
        assert diff.size <= 8
        changed += bool(diff.size)
        if diff.size:
            assert diff[-1] - diff[0] < 8  # one field: at most 8 adjacent bytes
    assert changed > 100


def test_python_harness_lets_unexpected_exceptions_through(monkeypatch, tmp_path):
    """Only EdgeqError is an expected answer: anything else escapes parse() and libFuzzer reports it."""
    pytest.importorskip("atheris")
    import fuzz_python

    monkeypatch.setattr(fuzz_python, "WORK", tmp_path)
    def broken_importer(path):
        raise IndexError("list index out of range")

    monkeypatch.setattr(fuzz_python, "from_tflite", broken_importer)
    fuzz_python.parse(b"EDGQ" + bytes(60))  # a truncated blob: BlobError, swallowed
    with pytest.raises(IndexError):
        fuzz_python.parse(b"TFL3 not really")
