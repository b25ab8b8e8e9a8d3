"""Bad blobs and bad graphs are refused by the C loader with a specific status code and a one-line
message, through the binding and through the ASan+UBSan runner, never a crash."""

from __future__ import annotations

import ctypes as C
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_blob import _first_weight, _reseal, _sections, _tensor_at, corruptions

from edgeq.blob import layout as L
from edgeq.errors import BlobError, EdgeqError
from edgeq.runtime import Session, _Diag, library, runner_path

GRAPH_HEADER, OP_SIZE, TENSOR_SIZE = 80, 104, 80
# corruption (tests/test_blob.py) -> the C status code it must produce
BLOB_CODES = {"truncated": 100, "tiny": 100, "magic": 101, "newer major": 102, "flip strings": 109,
              "flip tensors": 109, "flip graph": 109, "flip metadata": 109, "flip data": 109, "flip header": 100,
              "offset outside": 119, "unknown format": 114, "huge size": 119, "unknown op": 202, "tensor index": 203}


def graph_cases(buf: bytes) -> dict[str, tuple[bytearray, int, str]]:
    """Structurally valid blobs whose graph is wrong: name -> (bytes, code, text in the message)."""
    _, goff, _ = _sections(buf)[L.SECTION_GRAPH]
    op0, op1 = goff + GRAPH_HEADER, goff + GRAPH_HEADER + OP_SIZE
    cases = {}
    swapped = bytearray(buf)  # op 1 first: its input is produced by op 0, now later
    swapped[op0:op1], swapped[op1 : op1 + OP_SIZE] = buf[op1 : op1 + OP_SIZE], buf[op0:op1]
    cases["used before produced"] = (_reseal(swapped), 205, "used before it is produced")
    out = int.from_bytes(buf[op1 + 8 + 4 * 6 : op1 + 8 + 4 * 6 + 4], "little", signed=True)  # op 1 output 0
    at = _tensor_at(buf, out)
    wider = bytearray(buf)  # the linear's output claims one more feature than the weight has rows
    wider[at + 20 : at + 24] = (int.from_bytes(buf[at + 20 : at + 24], "little") + 1).to_bytes(4, "little")
    cases["shape mismatch"] = (_reseal(wider), 208, "shape mismatch")
    twice = bytearray(buf)  # op 1 writes op 0's output again
    twice[op1 + 32 : op1 + 36] = buf[op0 + 32 : op0 + 36]
    cases["produced twice"] = (_reseal(twice), 206, "already produced")
    w = _first_weight(buf)
    fmt = bytearray(buf)  # the weight becomes a plain int32 tensor of the same bytes: not a packed weight
    wat = _tensor_at(buf, w)
    fmt[wat + 9] = 0  # scale kind NONE on a packed record: refused as a tensor
    cases["weight without scales"] = (_reseal(fmt), 0, "")
    clamp = bytearray(buf)  # op 1 clamps to [-128, 300]
    clamp[op1 + 40 + 4 : op1 + 40 + 8] = (300).to_bytes(4, "little", signed=True)
    cases["bad clamp"] = (_reseal(clamp), 209, "clamp")
    return cases


def _create(blob: bytes) -> tuple[int, str]:
    lib = library()
    buf = np.zeros(len(blob) + 64, np.uint8)
    at = -buf.ctypes.data % 64
    buf[at : at + len(blob)] = np.frombuffer(blob, np.uint8)
    need, diag = C.c_size_t(), _Diag()
    status = lib.edgeq_arena_size(buf.ctypes.data + at, len(blob), None, C.byref(need), C.byref(diag))
    return status, diag.message.decode()


@pytest.fixture(scope="module")
def asan_runner() -> Path:
    return runner_path(sanitize=True)


def run_runner(runner: Path, blob: Path) -> tuple[int, dict]:
    res = subprocess.run([str(runner), str(blob), "--runs", "1", "--warmup", "0"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout)


def test_blob_corruptions_give_specific_codes(mlp_t2_blob, asan_runner, tmp_path):
    buf = mlp_t2_blob.read_bytes()
    cases = corruptions(buf)
    assert set(cases) == set(BLOB_CODES)
    for name, (data, needle) in cases.items():
        status, message = _create(bytes(data))
        assert status == BLOB_CODES[name], (name, status, message)
        assert needle in message, (name, message)
        path = tmp_path / "bad.edgeq"
        path.write_bytes(bytes(data))
        code, out = run_runner(asan_runner, path)
        assert code == 2 and out["code"] == BLOB_CODES[name] and out["error"] == message, (name, out)


def test_graph_errors_give_specific_codes(mlp_t2_blob, asan_runner, tmp_path):
    buf = mlp_t2_blob.read_bytes()
    for name, (data, code, needle) in graph_cases(buf).items():
        status, message = _create(bytes(data))
        assert status != 0 and (code == 0 or status == code), (name, status, message)
        assert needle in message, (name, message)
        path = tmp_path / "bad.edgeq"
        path.write_bytes(bytes(data))
        rc, out = run_runner(asan_runner, path)
        assert rc == 2 and out["code"] == status, (name, out)


def test_every_single_byte_flip_is_refused_or_harmless(mlp_t2_blob, asan_runner, tmp_path):
    """Flipping any byte of header, section table, tensor table or graph never crashes the sanitized runner."""
    buf = mlp_t2_blob.read_bytes()
    secs = _sections(buf)
    spans = [(0, 64 + 32 * len(secs)), secs[L.SECTION_TENSORS][1:], secs[L.SECTION_GRAPH][1:]]
    rng = np.random.default_rng(0)
    offsets = sorted({int(rng.integers(s, s + n)) for s, n in spans for _ in range(12)})
    for off in offsets:
        data = bytearray(buf)
        data[off] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "flip.edgeq"
        path.write_bytes(bytes(_reseal(data)) if off >= 64 + 32 * len(secs) else bytes(data))
        res = subprocess.run([str(asan_runner), str(path), "--runs", "1", "--warmup", "0"], capture_output=True,
                             text=True, timeout=120, check=False)
        assert res.returncode in (0, 2), (off, res.returncode, res.stderr[-2000:])
        assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr, (off, res.stderr)


def test_session_raises_blob_error_with_the_c_message(mlp_t2_blob, tmp_path):
    data, _ = corruptions(mlp_t2_blob.read_bytes())["newer major"]
    bad = tmp_path / "newer.edgeq"
    bad.write_bytes(bytes(data))
    with pytest.raises(BlobError, match="newer than this runtime") as err:
        Session(bad)
    assert err.value.status == 102


def test_arena_too_small_and_misaligned(mlp_t2_blob):
    lib = library()
    blob = np.frombuffer(mlp_t2_blob.read_bytes(), np.uint8)
    buf = np.zeros(blob.size + 128, np.uint8)
    at = -buf.ctypes.data % 64
    buf[at : at + blob.size] = blob
    ptr = buf.ctypes.data + at
    need, diag, model = C.c_size_t(), _Diag(), C.c_void_p()
    assert lib.edgeq_arena_size(ptr, blob.size, None, C.byref(need), C.byref(diag)) == 0
    arena = np.zeros(need.value + 64, np.uint8)
    aligned = arena.ctypes.data + (-arena.ctypes.data % 64)
    status = lib.edgeq_create(ptr, blob.size, None, aligned, need.value - 1, C.byref(model), C.byref(diag))
    assert status == 302 and "arena too small" in diag.message.decode() and not model.value
    status = lib.edgeq_create(ptr, blob.size, None, aligned + 8, need.value, C.byref(model), C.byref(diag))
    assert status == 303
    status = lib.edgeq_arena_size(ptr + 1, blob.size, None, C.byref(need), C.byref(diag))
    assert status == 123
    assert lib.edgeq_create(ptr, blob.size, None, aligned, need.value, C.byref(model), C.byref(diag)) == 0
    assert lib.edgeq_run(model, 2) == 306  # max_batch is 1
    assert b"batch 2" in lib.edgeq_last_error(model)
    lib.edgeq_destroy(model)


def test_strerror_names_every_range():
    lib = library()
    assert lib.edgeq_status_name(205) == b"EDGEQ_E_USED_BEFORE_PRODUCED"
    assert lib.edgeq_strerror(302) == b"arena too small"
    assert lib.edgeq_status_name(999) == b"EDGEQ_E_UNKNOWN"
    with pytest.raises(EdgeqError, match="unknown kernel tier"):
        Session(Path("x"), tier="sse9")
