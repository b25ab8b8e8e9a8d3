"""`edgeq build --target android-arm64 --lib`: a freestanding aarch64 libedgeq.so (no NEEDED entries,
no versioned glibc symbols) that a C program using only edgeq.h runs under qemu-aarch64 with the
host reference's outputs (docs/android.md)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import runtime_graphs as RG
from click.testing import CliRunner

from edgeq import reference
from edgeq.blob import write_blob
from edgeq.build import build_runtime
from edgeq.cli import main
from edgeq.formats import ids as F
from edgeq.targets import get_target

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "tests" / "c" / "abi_client.c"
QEMU = ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"]
EM_AARCH64 = 183


def _readelf(*args: str) -> str:
    return subprocess.run(["readelf", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def android_lib(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("android-lib")
    build_runtime(get_target("android-arm64"), out, lib=True)
    return out


@pytest.fixture(scope="module")
def abi_client(android_lib) -> Path:
    """tests/c/abi_client.c, compiled against nothing but the built include/edgeq/edgeq.h."""
    exe = android_lib / "abi_client"
    subprocess.run(["aarch64-linux-gnu-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I",
                    str(android_lib / "include"), str(CLIENT), "-L", str(android_lib), "-ledgeq",
                    "-Wl,-rpath,$ORIGIN", "-o", str(exe)], check=True)
    return exe


def run_client(client: Path, blob: Path, x: np.ndarray, tmp_path: Path, cpu: str = "max") -> tuple[str, list[bytes]]:
    """Runs the client on x under qemu; (stdout, raw bytes of each graph output)."""
    inp = tmp_path / "input.bin"
    np.ascontiguousarray(x).tofile(inp)
    qemu = [QEMU[0], "-cpu", cpu, *QEMU[3:]]
    res = subprocess.run([*qemu, str(client), str(blob), str(inp), str(tmp_path)], capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    n = int(re.search(r"outputs (\d+)", res.stdout).group(1))
    return res.stdout, [(tmp_path / f"out{k}.bin").read_bytes() for k in range(n)]


def test_lib_has_no_needed_entries_and_no_glibc_symbols(android_lib):
    so = android_lib / "libedgeq.so"
    assert int.from_bytes(so.read_bytes()[18:20], "little") == EM_AARCH64
    dynamic = _readelf("-d", str(so))
    assert "(NEEDED)" not in dynamic and "Library soname: [libedgeq.so]" in dynamic
    assert "No version information found" in _readelf("-V", str(so))
    undefined = [line.split()[-1] for line in _readelf("--dyn-syms", "-W", str(so)).splitlines()
                 if " UND " in line and line.split()[-1] != "UND" and " GLOBAL " in line]
    assert undefined == []
    # what any ELF loader, bionic's included, handles: plain relocations, no TLS, no text relocations
    relocs = set(re.findall(r"\bR_AARCH64_\w+", _readelf("-rW", str(so))))
    assert relocs <= {"R_AARCH64_RELATIVE", "R_AARCH64_JUMP_SLOT", "R_AARCH64_GLOB_DAT", "R_AARCH64_ABS64"}, relocs
    segments = _readelf("-lW", str(so))
    assert " TLS " not in segments and "INTERP" not in segments and "TEXTREL" not in dynamic
    aligns = re.findall(r"LOAD\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(0x[0-9a-f]+)", _readelf("-lW", str(so)))
    assert aligns and all(int(a, 16) >= 16384 for a in aligns)  # 16 KiB page devices
    assert sorted(p.name for p in (android_lib / "include" / "edgeq").iterdir()) == [
        "edgeq.h", "edgeq_blob.h", "edgeq_pal.h", "edgeq_pal_hooks.h"]


def test_lib_exports_exactly_the_abi_with_hooks(android_lib):
    spec = importlib.util.spec_from_file_location("check_abi", ROOT / "tools" / "check_abi.py")
    check_abi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_abi)
    assert check_abi.check_abi_stability(android_lib / "libedgeq.so", pal="hooks") == []
    assert "edgeq_pal_set_hooks" in check_abi.exported_symbols(android_lib / "libedgeq.so")


@pytest.mark.parametrize("stem", ["mlp_t2_qat", "cnn_t2_qat"])
def test_abi_client_runs_digits_under_qemu_like_the_host_reference(abi_client, tmp_path, stem):
    from conftest import digits_blob_graph

    g, _, x_test, y_test = digits_blob_graph(stem, "t2", n_tests=4)
    blob = tmp_path / f"{stem}.edgeq"
    write_blob(g, blob)
    x = x_test[:32].astype(np.float32)
    stdout, (raw,) = run_client(abi_client, blob, x, tmp_path)
    want = reference.run(g, [x])[0]
    got = np.frombuffer(raw, want.dtype).reshape(want.shape)
    np.testing.assert_array_equal(got, want)
    assert got.argmax(1).tolist() == want.argmax(1).tolist()
    assert (got.argmax(1) == y_test[:32]).mean() > 0.8
    # the freestanding lib finds SDOT and SMMLA through ID_AA64ISAR0/1_EL1 (no getauxval without libc)
    assert "tier neon_i8mm" in stdout and "batch 32" in stdout
    assert "null-arena EDGEQ_E_NO_MEMORY" in stdout  # no allocator hook: the caller brings the arena
    assert "over-batch EDGEQ_E_BATCH: batch 33 outside 1..32" in stdout
    assert re.search(r"corrupt EDGEQ_E_\w+_CRC: \w+ .*checksum mismatch", stdout), stdout


@pytest.mark.parametrize("cpu,tier", [("cortex-a53", "neon"), ("cortex-a76", "neon_dotprod")])
def test_freestanding_lib_picks_the_tier_the_core_has(abi_client, tmp_path, cpu, tier):
    """Cortex-A53: ID_AA64ISAR0_EL1 has no DP field, so the runtime takes the ARMv8.0 tier; Cortex-A76:
    SDOT but no I8MM in ID_AA64ISAR1_EL1, so the dotprod tier (no SIGILL on either)."""
    from conftest import digits_blob_graph

    g, _, x_test, _ = digits_blob_graph("mlp_t2_qat", "t2", n_tests=4)
    write_blob(g, tmp_path / "mlp.edgeq")
    x = x_test[:32].astype(np.float32)
    stdout, (raw,) = run_client(abi_client, tmp_path / "mlp.edgeq", x, tmp_path, cpu=cpu)
    want = reference.run(g, [x])[0]
    np.testing.assert_array_equal(np.frombuffer(raw, want.dtype).reshape(want.shape), want)
    assert f"tier {tier} " in stdout


def test_every_op_with_softmax_runs_on_the_freestanding_lib(abi_client, tmp_path):
    """All ops, memcpy/memset/memmove and the runtime's own expf, against the reference."""
    g = RG.all_ops_graph(3, "t2", F.SCALE_ROW)
    blob = tmp_path / "ops.edgeq"
    write_blob(g, blob)
    x = np.random.default_rng(3).normal(0, 1, (5, 7, 6, 3)).astype(np.float32)
    _, raws = run_client(abi_client, blob, x, tmp_path)
    want = reference.run(g, [x])
    for k, (raw, w) in enumerate(zip(raws, want)):
        got = np.frombuffer(raw, w.dtype).reshape(w.shape)
        if k == 0:  # softmax: docs/numerics.md tolerance
            np.testing.assert_allclose(got, w, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, w)


def test_cli_build_lib(tmp_path):
    res = CliRunner().invoke(main, ["build", "--target", "android-arm64", "--lib", "-o", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["runner"] is None and str(tmp_path / "libedgeq.so") in out["libraries"]
    assert (tmp_path / "include" / "edgeq" / "edgeq.h").is_file()
    res = CliRunner().invoke(main, ["build", "--target", "host", "--lib"])
    assert res.exit_code != 0 and "--lib builds the freestanding library for aarch64" in res.output


def test_cmake_project_builds_the_same_freestanding_lib(android_lib, tmp_path):
    """runtimes/CMakeLists.txt with the toolchain file `edgeq build` writes: same guarantees, same outputs."""
    build = tmp_path / "cmake"
    for cmd in (["cmake", "-S", str(ROOT / "runtimes"), "-B", str(build), "-DEDGEQ_FREESTANDING=ON",
                 f"-DCMAKE_TOOLCHAIN_FILE={android_lib / 'toolchain.cmake'}", "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", str(build), "-j2"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    so = build / "libedgeq.so"
    assert "(NEEDED)" not in _readelf("-d", str(so)) and "No version information" in _readelf("-V", str(so))
    spec = importlib.util.spec_from_file_location("check_abi", ROOT / "tools" / "check_abi.py")
    check_abi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_abi)
    assert check_abi.check_abi_stability(so, pal="hooks") == []
    client = build / "abi_client"
    subprocess.run(["aarch64-linux-gnu-gcc", "-std=c99", "-I", str(ROOT / "runtimes" / "include"), str(CLIENT),
                    "-L", str(build), "-ledgeq", "-Wl,-rpath,$ORIGIN", "-o", str(client)], check=True)
    g = RG.all_ops_graph(5, "q4", F.SCALE_BLOCK, block=32)
    blob = tmp_path / "ops.edgeq"
    write_blob(g, blob)
    x = np.random.default_rng(5).normal(0, 1, (3, 7, 6, 3)).astype(np.float32)
    _, raws = run_client(client, blob, x, tmp_path)
    want = reference.run(g, [x])
    np.testing.assert_allclose(np.frombuffer(raws[0], np.float32).reshape(want[0].shape), want[0], rtol=0, atol=1e-6)
    for raw, w in zip(raws[1:], want[1:]):
        np.testing.assert_array_equal(np.frombuffer(raw, w.dtype).reshape(w.shape), w)


def test_freestanding_libc_subset(tmp_path):
    """runtimes/src/freestanding.c on the host: expf within 1 ulp of exp over the normal range (inf /
    0 / NaN at the edges), memmove with overlap both ways, memchr, memcmp, memset."""
    import ctypes as C

    so = tmp_path / "libfs.so"
    subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Werror", "-ffp-contract=off", "-ffreestanding", "-fno-builtin",
                    "-shared", "-fPIC", str(ROOT / "runtimes" / "src" / "freestanding.c"), "-o", str(so)], check=True)
    lib = C.CDLL(str(so))
    lib.expf.restype, lib.expf.argtypes = C.c_float, [C.c_float]
    x = np.linspace(-103.9, 88.7, 100_003, dtype=np.float32)
    got = np.array([lib.expf(float(v)) for v in x], np.float64)
    want = np.exp(x.astype(np.float64))
    normal = want > np.finfo(np.float32).tiny
    ulps = np.abs(got - want)[normal] / np.spacing(want[normal].astype(np.float32))
    assert ulps.max() < 1.0
    assert lib.expf(89.0) == np.inf and lib.expf(-104.0) == 0.0 and np.isnan(lib.expf(float("nan")))
    assert lib.expf(0.0) == 1.0

    buf = C.create_string_buffer(b"0123456789")
    for name in ("memmove", "memchr", "memcmp", "memset"):
        fn = getattr(lib, name)
        fn.restype = C.c_int if name == "memcmp" else C.c_void_p
        fn.argtypes = [C.c_void_p, C.c_int if name in ("memchr", "memset") else C.c_void_p, C.c_size_t]
    lib.memmove(C.addressof(buf) + 2, buf, 6)
    assert buf.value == b"0101234589"
    lib.memmove(buf, C.addressof(buf) + 2, 6)
    assert buf.value == b"0123454589"
    assert lib.memchr(buf, ord("5"), 10) == C.addressof(buf) + 5 and lib.memchr(buf, ord("7"), 10) is None
    assert lib.memcmp(b"abc", b"abd", 3) < 0 < lib.memcmp(b"abd", b"abc", 3) and lib.memcmp(b"ab", b"ab", 2) == 0
    lib.memset(buf, ord("x"), 3)
    assert buf.value == b"xxx3454589"
