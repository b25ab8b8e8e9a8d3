"""Signed blobs (docs/signing.md): keygen/sign/verify CLI, and tampering -- one flipped bit at ~50 positions
across the whole signed file (header, section table, padding, every section, tensor data, the signature
itself) with EVERY CRC recomputed afterwards, so only the signature can catch it -- refused by the Python
verifier, the C runtime (binding, runner, ASan build) and the runner on emulated rpi5 (qemu-aarch64 through
the deploy transport). The untampered signed blob runs with correct outputs everywhere; other keys are refused."""

from __future__ import annotations

import itertools
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS
from tamper import HEADER, SECTION, restamp, sections, tampered

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.blob.sign import SignatureError, key_id, load_public_key, sign_blob, verify_blob
from edgeq.cli import main
from edgeq.errors import BlobError
from edgeq.runtime import Session, runner_path, sanitizer_env, verify_signature

CRC_CODES = {104, 109, 110}           # header, section, file checksum: restamped, so never the catcher
SIGNATURE_CODES = {111, 125, 126}     # malformed signature section, other key id, signature invalid
UNSIGNED = 124


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


# ---- helpers ------------------------------------------------------------------------------------

def field(struct, name: str) -> tuple[int, int]:
    f = getattr(struct, name)
    return f.offset, f.size


def tamper_positions(buf: bytes) -> list[tuple[int, int, str, bool]]:
    """(byte, bit, what, only_the_signature_can_catch_it) at ~50 places covering every part of the file.
    CRC fields are left out: restamping restores them, so flipping one changes nothing."""
    rng = np.random.default_rng(11)
    secs = sections(buf)
    out = []

    def pick(start: int, size: int, n: int, what: str, sig_only: bool) -> None:
        for at in sorted({int(x) for x in rng.integers(start, start + size, n)}):
            out.append((at, int(rng.integers(0, 8)), what, sig_only))

    H = L.edgeq_header_t
    for name in ("magic", "version_major", "n_sections", "file_size", "section_table_offset"):
        pick(*field(H, name), 1, f"header.{name}", False)
    for name in ("version_minor", "target", "reserved"):  # read by no structural check
        pick(*field(H, name), 1, f"header.{name}", True)
    out.append((field(H, "flags")[0], 0, "header.flags SIGNED bit", False))
    out.append((field(H, "flags")[0], 5, "header.flags other bit", True))
    table_end = HEADER + len(secs) * SECTION
    for i, sec in enumerate(secs):
        name = L.SECTION_NAMES[sec.kind]
        at = HEADER + i * SECTION
        for fname, sig_only in (("kind", False), ("offset", False), ("size", False), ("reserved", True)):
            if fname in ("kind", "reserved") or i % 2 == (fname == "size"):
                off, size = field(L.edgeq_section_t, fname)
                pick(at + off, size, 1, f"table[{name}].{fname}", sig_only)
        n = {"data": 10, "tensors": 5, "graph": 5, "metadata": 4, "strings": 3}.get(name, 0)
        if n:
            pick(sec.offset, sec.size, n, f"{name} section", True)
    ordered = sorted(secs, key=lambda s: s.offset)
    gaps = [(table_end, ordered[0].offset)] + [(a.offset + a.size, b.offset) for a, b in itertools.pairwise(ordered)]
    for start, end in gaps:
        if end > start:
            pick(start, end - start, 1, "padding", True)
    sig = next(s for s in secs if s.kind == L.SECTION_SIGNATURE)
    for fname in ("algorithm", "reserved", "key_id", "signature"):
        off, size = field(L.edgeq_signature_t, fname)
        pick(sig.offset + off, size, 3 if fname == "signature" else 1, f"signature.{fname}", True)
    return out


def run_runner(runner: Path, blob: Path, *args: str) -> tuple[int, dict]:
    res = subprocess.run([str(runner), str(blob), "--runs", "1", "--warmup", "0", *args], capture_output=True,
                         text=True, timeout=300, check=False)
    assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr, res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout)


# ---- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("a", "b"):
        res = cli("keygen", "-o", str(d / name))
        assert res.exit_code == 0, res.output
        out[name], out[name + ".pub"] = d / name, d / f"{name}.pub"
    return out


@pytest.fixture(scope="module")
def signed(mlp_t2_blob, keys, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signed") / "mlp_t2_signed.edgeq"
    res = cli("sign", str(mlp_t2_blob), "--key", str(keys["a"]), "-o", str(path))
    assert res.exit_code == 0, res.output
    return path


@pytest.fixture(scope="module")
def tamper_cases(signed, tmp_path_factory) -> list[tuple[Path, int, int, str, bool]]:
    buf = signed.read_bytes()
    d = tmp_path_factory.mktemp("tampered")
    cases = []
    for k, (at, bit, what, sig_only) in enumerate(tamper_positions(buf)):
        path = d / f"t{k:02d}.edgeq"
        data = tampered(buf, at, bit)
        assert data != buf
        path.write_bytes(data)
        cases.append((path, at, bit, what, sig_only))
    return cases


# ---- keys, sign, verify: CLI ----------------------------------------------------------------------

def test_keygen_writes_a_private_key_only_its_owner_reads(keys):
    assert stat.S_IMODE(keys["a"].stat().st_mode) == 0o600
    assert keys["a"].read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(load_public_key(keys["a.pub"])) == 32
    res = cli("keygen", "-o", str(keys["a"]))
    assert res.exit_code == 2 and "refusing to overwrite" in res.output


def test_sign_then_verify_and_the_three_refusals(mlp_t2_blob, signed, keys, tmp_path):
    buf = signed.read_bytes()
    assert read_blob(signed).checks["signature"] == "present (not verified)"
    assert read_blob(mlp_t2_blob).checks["signature"] == "unsigned"
    res = cli("verify", str(signed), "--pub", str(keys["a.pub"]))
    assert res.exit_code == 0 and "signature ok" in res.output
    assert key_id(load_public_key(keys["a.pub"])).hex() in res.output
    res = cli("verify", str(mlp_t2_blob), "--pub", str(keys["a.pub"]))
    assert res.exit_code == 2 and "blob is not signed" in res.output, res.output
    res = cli("verify", str(signed), "--pub", str(keys["b.pub"]))
    assert res.exit_code == 2 and "signed by another key" in res.output, res.output
    bad = tmp_path / "bad.edgeq"
    at = sections(buf)[4].offset + 100  # a weight byte in DATA
    bad.write_bytes(tampered(buf, at, 3))
    res = cli("verify", str(bad), "--pub", str(keys["a.pub"]))
    assert res.exit_code == 2 and "modified after it was signed" in res.output, res.output
    assert "Traceback" not in res.output


def test_sign_rewrites_in_place_atomically_and_re_signing_replaces_the_key(signed, keys, tmp_path):
    copy = tmp_path / "m.edgeq"
    shutil.copy(signed, copy)
    sign_blob(copy, keys["b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.edgeq"]  # no temp file left
    assert copy.stat().st_size == signed.stat().st_size  # the section was refilled, not added twice
    verify_blob(copy, keys["b.pub"])
    with pytest.raises(SignatureError) as e:
        verify_blob(copy, keys["a.pub"])
    assert e.value.reason == "wrong_key"


def test_signing_a_corrupt_blob_is_refused_and_leaves_it_alone(mlp_t2_blob, keys, tmp_path):
    bad = tmp_path / "corrupt.edgeq"
    data = bytearray(mlp_t2_blob.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(data)
    res = cli("sign", str(bad), "--key", str(keys["a"]))
    assert res.exit_code == 2 and "checksum mismatch" in res.output
    assert bad.read_bytes() == data


def test_restamp_is_exact(signed):
    """The helper the tampering tests rely on: re-stamping an untouched blob changes nothing."""
    buf = signed.read_bytes()
    assert bytes(restamp(bytearray(buf))) == buf


# ---- untampered: correct outputs everywhere ---------------------------------------------------------

def test_signed_blob_runs_with_correct_outputs_in_binding_and_runner(mlp_t2_blob, signed, keys):
    g = read_blob(signed).graph
    x = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_INPUT)[0]].array)
    ref = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array)
    got = Session(signed, public_key=keys["a.pub"], require_signature=True, max_batch=len(x)).run([x])[0]
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(Session(mlp_t2_blob).run([x])[0], ref)
    verify_signature(signed, keys["a.pub"])  # the firmware's VERIFY entry point
    pub = keys["a.pub"]
    for runner in (runner_path(), runner_path(sanitize=True)):
        rc, out = run_runner(runner, signed, "--pubkey", str(pub), "--require-signature")
        assert rc == 0 and out["tests"] == len(x), out
        np.testing.assert_allclose(np.asarray(out["outputs"], np.float32), ref, rtol=0, atol=1e-6)


def test_runtime_refuses_unsigned_and_other_keys(mlp_t2_blob, signed, keys):
    with pytest.raises(BlobError) as e:
        Session(mlp_t2_blob, public_key=keys["a.pub"], require_signature=True)
    assert e.value.status == UNSIGNED and "not signed" in str(e.value)
    Session(mlp_t2_blob, public_key=keys["a.pub"])  # a key alone does not demand a signature
    with pytest.raises(BlobError) as e:
        Session(signed, public_key=keys["b.pub"])
    assert e.value.status == 125 and "another key" in str(e.value)
    with pytest.raises(BlobError) as e:
        verify_signature(mlp_t2_blob, keys["a.pub"])
    assert e.value.status == UNSIGNED
    rc, out = run_runner(runner_path(), mlp_t2_blob, "--pubkey", str(keys["a.pub"]), "--require-signature")
    assert rc == 2 and out["status"] == "EDGEQ_E_UNSIGNED", out
    rc, out = run_runner(runner_path(), signed, "--pubkey", str(keys["b.pub"]))
    assert rc == 2 and out["status"] == "EDGEQ_E_SIGNATURE_KEY", out
    rc, out = run_runner(runner_path(), signed, "--require-signature")
    assert rc == 2 and out["status"] == "EDGEQ_E_ARG", out


# ---- tampering: one bit, every CRC recomputed ----------------------------------------------------

def test_positions_cover_every_part_of_the_file(tamper_cases, signed):
    whats = {what.split(".")[0].split("[")[0] for _, _, _, what, _ in tamper_cases}
    assert {"header", "table", "padding", "strings section", "tensors section", "graph section",
            "metadata section", "data section", "signature"} <= whats
    assert 45 <= len(tamper_cases) <= 70


def test_tampered_bits_are_refused_by_the_python_verifier(tamper_cases, keys):
    for path, at, bit, what, sig_only in tamper_cases:
        with pytest.raises(BlobError) as e:
            verify_blob(path, keys["a.pub"])
        assert not sig_only or isinstance(e.value, SignatureError), (what, at, bit, str(e.value))
        assert "checksum" not in str(e.value), (what, at, bit, str(e.value))


def test_tampered_bits_are_refused_by_the_c_runtime(tamper_cases, keys):
    """Binding and runner. Most DATA flips (weights) load fine without a key: only the signature catches them."""
    pub = keys["a.pub"]
    runner = runner_path()
    data_flips, load_without_key = 0, 0
    for path, at, bit, what, sig_only in tamper_cases:
        with pytest.raises(BlobError) as e:
            Session(path, public_key=pub, require_signature=True)
        status = e.value.status
        assert status not in CRC_CODES and (not sig_only or status in SIGNATURE_CODES), (what, at, bit, str(e.value))
        rc, out = run_runner(runner, path, "--pubkey", str(pub), "--require-signature")
        assert rc == 2 and out["code"] == status, (what, out)
        if what == "data section":
            data_flips += 1
            try:
                Session(path)
                load_without_key += 1
            except BlobError as e:  # e.g. a requantization shift pushed out of range by the flip
                assert e.status not in CRC_CODES, str(e)
    assert data_flips >= 8 and load_without_key >= data_flips // 2, (data_flips, load_without_key)


def test_tampered_bits_are_refused_by_the_asan_build(tamper_cases, keys):
    """The sanitized runner on every case, and the sanitized library through the binding in one subprocess."""
    pub = str(keys["a.pub"])
    runner = runner_path(sanitize=True)
    for path, _, _, what, sig_only in tamper_cases:
        rc, out = run_runner(runner, path, "--pubkey", pub, "--require-signature")
        assert rc == 2 and out["code"] not in CRC_CODES and (not sig_only or out["code"] in SIGNATURE_CODES), (what, out)
    code = f"""
import json
from edgeq.errors import BlobError
from edgeq.runtime import Session
codes = []
for path in {[str(c[0]) for c in tamper_cases]!r}:
    try:
        Session(path, public_key={pub!r}, require_signature=True, sanitize=True)
        codes.append(0)
    except BlobError as e:
        codes.append(e.status)
print(json.dumps(codes))
"""
    res = subprocess.run([sys.executable, "-c", code], env=sanitizer_env(), capture_output=True, text=True,
                         timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    codes = json.loads(res.stdout)
    for (_, _, _, what, sig_only), status in zip(tamper_cases, codes):
        assert status and status not in CRC_CODES and (not sig_only or status in SIGNATURE_CODES), (what, status)


def test_deploy_with_a_key_refuses_an_unsigned_blob_even_where_not_required(mlp_t2_blob, keys, tmp_path):
    """A key from --pubkey or from the device inventory makes the signature mandatory for that deploy."""
    res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", str(mlp_t2_blob), "--pubkey", str(keys["a.pub"])])
    assert res.exit_code == 2 and "blob is not signed" in res.output, res.output
    (tmp_path / "devices.toml").write_text(f'[pi]\ntarget = "rpi5"\nconnect = "qemu-user://cortex-a76"\n'
                                           f'public_key = "{keys["b.pub"]}"\n')
    res = CliRunner().invoke(main, ["deploy", "--device", "pi", str(mlp_t2_blob)],
                             env={"EDGEQ_CONFIG_DIR": str(tmp_path)})
    assert res.exit_code == 2 and "blob is not signed" in res.output, res.output


# ---- emulated rpi5: the cross-built runner under qemu-aarch64, through the deploy transport ----------

@pytest.fixture(scope="module")
def rpi5(tmp_path_factory):
    """rpi5 with [security] require_signature = true, as a user's board file overriding the built-in."""
    d = tmp_path_factory.mktemp("boards")
    text = (Path(__file__).resolve().parent.parent / "targets" / "rpi5.toml").read_text()
    assert "require_signature = false" in text
    (d / "rpi5.toml").write_text(text.replace("require_signature = false", "require_signature = true"))
    return d


def test_rpi5_requiring_signatures_runs_the_signed_blob_and_refuses_the_rest(rpi5, signed, mlp_t2_blob, keys,
                                                                             tamper_cases, monkeypatch):
    from edgeq.build import build_runtime
    from edgeq.runner.deploy import Signing, resolve, run_on_device

    monkeypatch.setenv("EDGEQ_TARGETS_PATH", str(rpi5))
    env = {"EDGEQ_TARGETS_PATH": str(rpi5)}
    pub = str(keys["a.pub"])
    res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", str(signed), "--pubkey", pub, "--runs", "1",
                                    "--warmup", "0", "--json"], env=env)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["device"]["emulated"] and report["accuracy"]["passed"] and report["accuracy"]["max_abs_err"] == 0
    assert any("signature verified on the host and by the device runtime" in n for n in report["notes"])
    # The host refuses before pushing anything: no key, unsigned, another key, tampered, a model to pack.
    bad = next(c[0] for c in tamper_cases if c[3] == "data section")
    for args, needle in [([str(signed)], "requires signed blobs"),
                         ([str(mlp_t2_blob), "--pubkey", pub], "not signed"),
                         ([str(signed), "--pubkey", str(keys["b.pub"])], "another key"),
                         ([str(bad), "--pubkey", pub], "modified after it was signed"),
                         ([str(DIGITS_MODELS / "mlp_t2_qat.pt2"), "--pubkey", pub], "needs a signed blob")]:
        res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", *args], env=env)
        assert res.exit_code == 2 and needle in res.output, (args, res.output)
    # The device refuses on its own (host check bypassed): unsigned and a few tampered blobs.
    plan = resolve("rpi5", None, None)
    runner = build_runtime(plan.target).runner
    signing = Signing(load_public_key(keys["a.pub"]))
    picks = {"data section", "graph section", "header.target", "signature.signature"}
    chosen = [c for c in tamper_cases if c[3] in picks]
    chosen = list({c[3]: c for c in chosen}.values())
    assert len(chosen) == len(picks)
    for path, want in [(mlp_t2_blob, "not signed")] + [(c[0], "modified after it was signed") for c in chosen]:
        with pytest.raises(BlobError) as e:
            run_on_device(plan, runner, path, 1, 0, 300, signing)
        assert "the device refused the blob" in str(e.value) and want in str(e.value), str(e.value)
