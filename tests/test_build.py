"""NEON/host build config and `edgeq build`: cross-compiles, caches, and fails clearly without a toolchain."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeq.build import build_runtime
from edgeq.build.builder import RUNTIME_DIR
from edgeq.cli import main
from edgeq.errors import BuildError, EdgeqError
from edgeq.targets import get_target, neon
from edgeq.targets.registry import BUILTIN_DIR, ENV_PATH

EM_AARCH64, EM_X86_64 = 183, 62
HAVE_AARCH64 = shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")
FAKE_MAKEFILE = """\
CC ?= cc
all: out/edgeq_runner
out/edgeq_runner: runner.c
\tmkdir -p out
\t$(CC) $(TARGET_CFLAGS) -DEDGEQ_ARCH='"$(ARCH)"' -DTIER='"$(EDGEQ_KERNEL_TIER)"' runner.c -o $@ $(TARGET_LDFLAGS)
"""
FAKE_RUNNER = """\
#include <stdio.h>
#if defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>
#endif
int main(int argc, char **argv) {
    (void)argv;
#if defined(__ARM_FEATURE_DOTPROD)
    int32x4_t acc = vdotq_s32(vdupq_n_s32(0), vdupq_n_s8((signed char)argc), vdupq_n_s8(3));
    printf("%s %s sdot=%d\\n", EDGEQ_ARCH, TIER, vgetq_lane_s32(acc, 0));
#else
    printf("%s %s plain\\n", EDGEQ_ARCH, TIER);
#endif
    return 0;
}
"""


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    return int.from_bytes(head[18:20], "little")


@pytest.fixture
def fake_runtime(tmp_path, monkeypatch) -> Path:
    """A stand-in for runtimes/ with the same make interface (CC, ARCH, TARGET_CFLAGS, TARGET_LDFLAGS)."""
    src = tmp_path / "runtime"
    src.mkdir()
    (src / "Makefile").write_text(FAKE_MAKEFILE)
    (src / "runner.c").write_text(FAKE_RUNNER)
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    return src


def test_rpi5_config():
    cfg = neon.config(get_target("rpi5"))
    assert cfg.march == "armv8.2-a+dotprod+fp16" and cfg.mtune == "cortex-a76"
    assert cfg.matvec_tier == "neon_dotprod" and cfg.gemm_tier == "neon_dotprod"
    assert cfg.kernels["t2"]["matvec"] == "neon_dotprod/t2_matvec"
    assert cfg.kernels["b1"]["xnor"] == "neon_dotprod/b1_xnor_matvec"
    assert cfg.layout == "rows4" and cfg.threads == 4 and cfg.static
    mv = cfg.make_vars()
    assert mv["CC"] == "aarch64-linux-gnu-gcc" and mv["ARCH"] == "aarch64" and mv["TARGET_LDFLAGS"] == "-static"
    assert "-march=armv8.2-a+dotprod+fp16" in mv["TARGET_CFLAGS"]
    assert "TARGET_CFLAGS := -O3" in cfg.config_mk()
    cmake = cfg.cmake_toolchain()
    assert "set(CMAKE_SYSTEM_PROCESSOR aarch64)" in cmake and "set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)" in cmake


def test_tiers_follow_features():
    assert neon.config(get_target("rpi4")).matvec_tier == "neon"  # A72: no dotprod
    android = neon.config(get_target("android-arm64"))
    assert (android.matvec_tier, android.gemm_tier) == ("neon_dotprod", "neon_i8mm")
    host = neon.config(get_target("host"))
    assert host.matvec_tier == "avx2" and not host.static and "CMAKE_FIND_ROOT_PATH_MODE" not in host.cmake_toolchain()


def test_kernels_table_overrides_choice(tmp_path, monkeypatch):
    text = (BUILTIN_DIR / "rpi5.toml").read_text().replace("\n[kernels]\n", '\n[kernels]\nt2 = "neon_lut/t2_matvec"\n')
    (tmp_path / "rpi5.toml").write_text(text)
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    cfg = neon.config(get_target("rpi5"))
    assert cfg.kernels["t2"]["matvec"] == "neon_lut/t2_matvec" and cfg.kernels["q4"]["matvec"].startswith("neon_dot")


def test_config_refuses_mcu():
    with pytest.raises(EdgeqError, match="family mcu"):
        neon.config(get_target("stm32h7"))


@pytest.mark.skipif(not HAVE_AARCH64, reason="needs aarch64-linux-gnu-gcc and qemu-aarch64")
def test_rpi5_build_runs_sdot_under_qemu_and_is_cached(fake_runtime, tmp_path):
    first = build_runtime(get_target("rpi5"), source=fake_runtime)
    assert not first.cached and elf_machine(first.runner) == EM_AARCH64
    assert "statically linked" in subprocess.run(["file", str(first.runner)], check=False, capture_output=True, text=True).stdout
    run = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a76", str(first.runner)], check=False, capture_output=True,
                         text=True, timeout=30)
    assert run.stdout.strip() == "aarch64 neon_dotprod sdot=12"
    old = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a53", str(first.runner)], check=False, capture_output=True,
                         timeout=30)
    assert old.returncode != 0  # SDOT is illegal on an A53: the target's flags really reached the compiler
    again = build_runtime(get_target("rpi5"), out=tmp_path / "out", source=fake_runtime)
    assert again.cached and again.runner == tmp_path / "out" / "edgeq_runner" and again.runner.is_file()
    assert (tmp_path / "out" / "toolchain.cmake").is_file()
    (fake_runtime / "runner.c").write_text(FAKE_RUNNER.replace("plain", "none"))
    assert not build_runtime(get_target("rpi5"), source=fake_runtime).cached  # a source edit rebuilds


def test_host_build_runs_natively(fake_runtime):
    result = build_runtime(get_target("host"), source=fake_runtime)
    assert elf_machine(result.runner) == EM_X86_64
    out = subprocess.run([str(result.runner)], check=False, capture_output=True, text=True, timeout=30).stdout
    assert out.strip() == "x86_64 avx2 plain"


def test_compile_error_is_a_build_error(fake_runtime):
    (fake_runtime / "runner.c").write_text("int main(void) { return syntax error; }\n")
    with pytest.raises(BuildError, match="runtime build failed") as e:
        build_runtime(get_target("host"), source=fake_runtime)
    assert e.value.exit_code == 5


def test_missing_toolchain_names_the_package(tmp_path, monkeypatch):
    text = (BUILTIN_DIR / "rpi5.toml").read_text().replace('id = "rpi5"', 'id = "nocc"')
    text = text.replace('cc = "aarch64-linux-gnu-gcc"', 'cc = "riscv64-unknown-gcc"')
    text = text.replace('package = "gcc-aarch64-linux-gnu"', 'package = "gcc-riscv64-linux-gnu"')
    (tmp_path / "nocc.toml").write_text(text)
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    result = CliRunner().invoke(main, ["build", "--target", "nocc"])
    assert result.exit_code == 5
    assert "riscv64-unknown-gcc not found" in result.output and "apt-get install gcc-riscv64-linux-gnu" in result.output


def test_build_refuses_fpga():  # MCU targets build firmware: tests/test_firmware.py
    result = CliRunner().invoke(main, ["build", "--target", "xc7z020"])
    assert result.exit_code == 2 and "Linux-class and MCU targets" in result.output


@pytest.mark.skipif(not (RUNTIME_DIR / "Makefile").is_file() or not HAVE_AARCH64,
                    reason="runtimes/Makefile (C runtime issue) not there yet")
def test_cli_build_rpi5_real_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["build", "--target", "rpi5", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    runner = Path(out["runner"])
    assert elf_machine(runner) == EM_AARCH64
    run = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a76", str(runner)], check=False, capture_output=True, timeout=60)
    assert run.returncode >= 0  # runs (usage error at most), no SIGILL/SIGSEGV
