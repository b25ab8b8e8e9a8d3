"""Blob container: round trip, zero-copy, atomic writes, and every corruption -> one clear error."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.blob import layout as L
from edgeq.blob import read_blob, write_blob
from edgeq.blob.writer import seal
from edgeq.cli import main
from edgeq.errors import BlobError

ROOT = Path(__file__).resolve().parent.parent


def _sections(buf: bytes) -> dict[int, tuple[int, int, int]]:
    """kind -> (table entry offset, section offset, size)."""
    head = L.edgeq_header_t.from_buffer_copy(buf[:64])
    out = {}
    for i in range(head.n_sections):
        at = 64 + 32 * i
        sec = L.edgeq_section_t.from_buffer_copy(buf[at : at + 32])
        out[sec.kind] = (at, sec.offset, sec.size)
    return out


def _reseal(buf: bytearray) -> bytearray:
    """Recomputes every CRC so only the structural checks can catch a change."""
    for at, off, size in _sections(bytes(buf)).values():
        buf[at + 4 : at + 8] = (zlib.crc32(buf[off : off + size]) & 0xFFFFFFFF).to_bytes(4, "little")
    seal(buf)
    return buf


def _tensor_at(buf: bytes, index: int) -> int:
    _, off, _ = _sections(buf)[L.SECTION_TENSORS]
    return off + index * ctypes.sizeof(L.edgeq_tensor_t)


def _first_weight(buf: bytes) -> int:
    blob_tensors = _sections(buf)[L.SECTION_TENSORS]
    n = blob_tensors[2] // ctypes.sizeof(L.edgeq_tensor_t)
    for i in range(n):
        rec = L.edgeq_tensor_t.from_buffer_copy(buf[_tensor_at(buf, i) :][:80])
        if rec.format >= 16:
            return i
    raise AssertionError("no weight tensor")


def test_round_trip_is_zero_copy_and_exact(mlp_t2_blob):
    blob = read_blob(mlp_t2_blob)
    assert blob.checks["file_crc"] == "ok"
    weights = [t for t in blob.graph.tensors if t.packed is not None]
    assert len(weights) == 3
    w = weights[0]
    assert w.packed.codes.base is not None  # a view into the mapping, not a copy
    assert not w.packed.codes.flags.writeable
    assert blob.size == mlp_t2_blob.stat().st_size
    # every payload is 64-byte aligned
    assert all(r.data_offset % 64 == 0 for r in blob.records if r.flags & L.TENSOR_CONST)
    # rewriting the parsed graph gives the same bytes
    again = mlp_t2_blob.with_suffix(".again")
    write_blob(blob.graph, again)
    assert again.read_bytes() == mlp_t2_blob.read_bytes()


def test_file_size_is_sum_of_tensors_plus_metadata(mlp_t2_blob):
    blob = read_blob(mlp_t2_blob)
    payload = sum(r.data_size for r in blob.records)
    meta = sum(s.size for k, s in blob.sections.items() if k != L.SECTION_DATA)
    assert blob.size <= 1.05 * (payload + meta)
    nominal = {"t2": 2.0, "t158": 1.625, "b1": 1.0, "i8": 8.0}  # code bits; + one fp32 scale per row
    for t in blob.graph.tensors:
        if t.packed is not None:
            p = t.packed
            want = nominal[p.fmt.name] + 32 / p.padded_cols
            assert abs(p.nbytes * 8 / (p.rows * p.padded_cols) - want) <= 0.05 * want, t.name


def test_write_is_atomic(tmp_path, mlp_t2_blob, monkeypatch):
    target = tmp_path / "model.edgeq"
    target.write_bytes(b"previous good blob")
    blob = read_blob(mlp_t2_blob)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError):
        write_blob(blob.graph, target)
    assert target.read_bytes() == b"previous good blob"
    assert [p.name for p in tmp_path.iterdir()] == ["model.edgeq"]


def corruptions(buf: bytes) -> dict[str, tuple[bytearray, str]]:
    """name -> (corrupted bytes, text the one-line error must contain)."""
    secs = _sections(buf)
    cases = {}
    cases["truncated"] = (bytearray(buf[: len(buf) // 2]), "truncated")
    cases["tiny"] = (bytearray(buf[:10]), "truncated")
    wrong = bytearray(buf)
    wrong[:4] = b"GGUF"
    cases["magic"] = (wrong, "magic")
    newer = bytearray(buf)
    newer[4:6] = (2).to_bytes(2, "little")
    cases["newer major"] = (_reseal(newer), "newer")
    for kind, (_, off, size) in secs.items():
        flipped = bytearray(buf)
        flipped[off + size // 2] ^= 0x40
        cases[f"flip {L.SECTION_NAMES[kind]}"] = (flipped, "checksum")
    head = bytearray(buf)
    head[20] ^= 1  # file_size field
    cases["flip header"] = (head, "")
    w = _first_weight(buf)
    at = _tensor_at(buf, w)
    outside = bytearray(buf)
    outside[at + 32 : at + 40] = (len(buf) + 4096).to_bytes(8, "little")
    cases["offset outside"] = (_reseal(outside), "outside")
    unknown = bytearray(buf)
    unknown[at + 4 : at + 6] = (99).to_bytes(2, "little")
    cases["unknown format"] = (_reseal(unknown), "unknown format id 99")
    big = bytearray(buf)
    big[at + 40 : at + 48] = (1 << 40).to_bytes(8, "little")
    cases["huge size"] = (_reseal(big), "outside")
    _, goff, _ = secs[L.SECTION_GRAPH]
    badop = bytearray(buf)
    badop[goff + 80 : goff + 82] = (999).to_bytes(2, "little")
    cases["unknown op"] = (_reseal(badop), "unknown op id 999")
    badidx = bytearray(buf)
    badidx[goff + 80 + 8 : goff + 80 + 12] = (10**6).to_bytes(4, "little")
    cases["tensor index"] = (_reseal(badidx), "out of range")
    return cases


def test_every_corruption_is_one_clear_error(tmp_path, mlp_t2_blob):
    buf = mlp_t2_blob.read_bytes()
    runner = CliRunner()
    for name, (data, needle) in corruptions(buf).items():
        path = tmp_path / f"{name.replace(' ', '_')}.edgeq"
        path.write_bytes(bytes(data))
        with pytest.raises(BlobError) as err:
            read_blob(path)
        assert needle in str(err.value), (name, str(err.value))
        result = runner.invoke(main, ["inspect", str(path)])
        assert result.exit_code == 2, (name, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.output)
        assert "Traceback" not in result.output


def test_inspect_cli_real_subprocess(mlp_t2_blob, tmp_path):
    ok = subprocess.run(check=False, args=[sys.executable, "-m", "edgeq.cli", "inspect", str(mlp_t2_blob), "--json"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert '"compression_vs_fp32"' in ok.stdout
    bad = tmp_path / "bad.edgeq"
    bad.write_bytes(mlp_t2_blob.read_bytes()[:100])
    res = subprocess.run(check=False, args=[sys.executable, "-m", "edgeq.cli", "inspect", str(bad)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 2
    assert res.stderr.startswith("error: truncated") and "Traceback" not in res.stderr


def test_random_garbage_never_crashes(tmp_path, mlp_t2_blob):
    rng = np.random.default_rng(0)
    buf = mlp_t2_blob.read_bytes()
    for i in range(200):
        data = bytearray(buf)
        for _ in range(rng.integers(1, 8)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        if rng.random() < 0.5:
            try:
                data = _reseal(data)
            except (ValueError, OverflowError):  # the corruption broke the section table itself
                pass
        path = tmp_path / "g.edgeq"
        path.write_bytes(bytes(data))
        try:
            read_blob(path)
        except BlobError:
            pass


def test_abi_mirror_matches_c_header():
    res = subprocess.run(check=False, args=[sys.executable, str(ROOT / "tools" / "check_abi.py")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ABI check: OK" in res.stdout
