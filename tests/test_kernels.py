"""Every kernel (format x tier x batch x scale kind) is bit-exact with the reference tier and with the
numpy mirror, in the optimised build and in the ASan+UBSan build (tests/kernel_cases.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kernel_cases import check_all, load, run_case

from edgeq.runtime import RUNTIME_DIR, sanitizer_env

HERE = Path(__file__).resolve().parent


def build_check_lib(out: Path, sanitize: bool) -> Path:
    lib = out / "libedgeq_check.so"
    cmd = ["make", "-s", "-C", str(RUNTIME_DIR), f"BUILD={out}", f"CHECK_SRC={HERE / 'c' / 'kernel_shim.c'}", str(lib)]
    subprocess.run(cmd + (["SANITIZE=1"] if sanitize else []), check=True, capture_output=True, timeout=600)
    return lib


@pytest.fixture(scope="module")
def check_lib(tmp_path_factory) -> Path:
    return build_check_lib(tmp_path_factory.mktemp("kernels"), sanitize=False)


def test_every_kernel_matches_reference_and_numpy(check_lib):
    assert check_all(check_lib) > 150


@pytest.mark.parametrize("tier,flag", [("avx2", "avx2"), ("avxvnni", "avx_vnni")])
def test_x86_tier_is_present_when_the_cpu_has_it(check_lib, tier, flag):
    """Guards against a tier that silently never runs: CPUID in the runtime agrees with the kernel's flags."""
    from kernel_cases import Case

    has = flag in Path("/proc/cpuinfo").read_text().split()
    name, got, want = run_case(load(check_lib), tier, Case("t2", 0, 256, 8, 300, 1, 0, 8), seed=1)
    if not has:
        assert name is None
        pytest.skip(f"no {flag} on this CPU: the {tier} tier is refused, as checked")
    assert name == f"{tier}/t2_row_matvec"
    assert (got == want).all()


def test_kernels_under_asan_and_ubsan(tmp_path):
    lib = build_check_lib(tmp_path, sanitize=True)
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import kernel_cases; print(kernel_cases.check_all({str(lib)!r}, quick=True))"
    res = subprocess.run([sys.executable, "-c", code], env=sanitizer_env(), capture_output=True, text=True, timeout=600,
                         check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert int(res.stdout.strip()) > 80
