"""`edgeq fit`: verdicts at the edge of a synthetic board, the arena plan, and linker scripts that boot in qemu."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.targets import get_target, list_targets, mcu
from edgeq.targets.registry import BUILTIN_DIR, ENV_PATH

MCU_BOARDS = [t.id for t in list_targets() if t.family == "mcu"]
HAVE_ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")


def synthetic_board(directory: Path, flash_kb: int, ram_kb: int) -> str:
    """An M4 board like stm32l4 with the given flash and RAM, dropped into an EDGEQ_TARGETS_PATH directory."""
    text = (BUILTIN_DIR / "stm32l4.toml").read_text().replace('id = "stm32l4"', 'id = "edge"')
    text = re.sub(r"(?m)^flash_kb = \d+ ", f"flash_kb = {flash_kb} ", text, count=1)
    text = re.sub(r"(?m)^ram_kb = \d+ ", f"ram_kb = {ram_kb} ", text, count=1)
    (directory / "edge.toml").write_text(text)
    return "edge"


@pytest.fixture
def board_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "boards"
    d.mkdir()
    monkeypatch.setenv(ENV_PATH, str(d))
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    return d


def _sizes(blob: Path) -> tuple[int, int]:
    report = mcu.fit(get_target("stm32l4"), blob, code=mcu.CodeSize(0, 0, 0, "given"))
    return report.flash.used, report.ram.parts["arena"]


def test_flash_just_fits_and_just_does_not(board_dir, mlp_t2_blob):
    blob_bytes, _ = _sizes(mlp_t2_blob)
    flash_kb = blob_bytes // 1024 + 2
    board = get_target(synthetic_board(board_dir, flash_kb, 64))
    code = flash_kb * 1024 - blob_bytes
    fits = mcu.fit(board, mlp_t2_blob, code=mcu.CodeSize(code, 0, 0, "given"))
    assert fits.fits and fits.flash.margin == 0
    over = mcu.fit(board, mlp_t2_blob, code=mcu.CodeSize(code + 1, 0, 0, "given"))
    assert not over.fits and over.flash.margin == -1 and over.ram.fits


def test_ram_just_fits_and_just_does_not(board_dir, mlp_t2_blob):
    _, arena = _sizes(mlp_t2_blob)
    ram_kb = arena // 1024 + 9
    board = get_target(synthetic_board(board_dir, 2048, ram_kb))
    stack = ram_kb * 1024 - arena
    code = mcu.CodeSize(0, 0, 0, "given")
    assert mcu.fit(board, mlp_t2_blob, stack_bytes=stack, code=code).ram.margin == 0
    over = mcu.fit(board, mlp_t2_blob, stack_bytes=stack + 1, code=code)
    assert not over.fits and over.ram.margin == -1 and over.flash.fits


def test_cli_says_by_how_much_and_which_formats_fit(board_dir, mlp_t2_blob, tmp_path):
    blob_bytes, _ = _sizes(mlp_t2_blob)
    flash_kb = blob_bytes // 1024 + 1
    synthetic_board(board_dir, flash_kb, 64)
    code = flash_kb * 1024 - blob_bytes + 100  # t2 is 100 bytes over; b1 weights are smaller, i8 much bigger
    runner = CliRunner()
    result = runner.invoke(main, ["fit", "--target", "edge", str(mlp_t2_blob), "--code-bytes", str(code), "--json"])
    assert result.exit_code == 2
    assert "does not fit edge: flash over by 100 bytes" in result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["flash"]["margin"] == -100 and not report["fits"]
    assert report["alternatives"]["b1"]["fits"] and not report["alternatives"]["i8"]["fits"]
    assert not report["alternatives"]["t2"]["fits"]
    table = runner.invoke(main, ["fit", "--target", "edge", str(mlp_t2_blob), "--code-bytes", str(code)],
                          terminal_width=200)
    line = next(x for x in table.output.splitlines() if x.startswith("formats that would fit"))
    assert "b1" in line and "i8" not in line


def test_cli_fit_writes_plan_and_linker_script(board_dir, mlp_t2_blob, tmp_path):
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["fit", "--target", "stm32h7", str(mlp_t2_blob), "--code-bytes", "30000",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "fits" in result.output
    script = (out / "memory.ld").read_text()
    # real board sizes (2 MiB flash, 512 KiB AXI SRAM) at the emulated mps2-an500's addresses
    assert "FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 2048K" in script
    assert "RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 512K" in script
    plan = json.loads((out / "arena_plan.json").read_text())
    fit = json.loads((out / "fit.json").read_text())
    # the script reserves the arena the verdict used: the runtime planner's when available, else the static plan
    arena = fit["arena_bytes"] if fit["arena_source"].startswith("runtime") else plan["size"]
    assert f"EDGEQ_ARENA_SIZE = {-(-arena // mcu.ARENA_ALIGN) * mcu.ARENA_ALIGN};" in script
    board = mcu.linker_script(get_target("stm32h7"), 1024, 4096, placement="board")
    assert "ORIGIN = 0x08000000, LENGTH = 2048K" in board and "ORIGIN = 0x24000000, LENGTH = 512K" in board


def test_fit_refuses_non_mcu(mlp_t2_blob):
    result = CliRunner().invoke(main, ["fit", "--target", "rpi5", str(mlp_t2_blob)])
    assert result.exit_code == 2 and "for mcu targets" in result.output


def test_arena_plan_never_overlaps_live_buffers():
    from conftest import digits_blob_graph

    graph, *_ = digits_blob_graph("cnn_t2_qat", "t2", n_tests=1)
    plan = mcu.plan_arena(graph)
    for i, a in enumerate(plan.slots):
        assert a.offset % mcu.ARENA_ALIGN == 0 and a.size >= mcu.activation_bytes(graph.tensors[a.tensor])
        for b in plan.slots[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    biggest_pair = max(a.size + b.size for a in plan.slots for b in plan.slots
                       if a is not b and a.first <= b.last and b.first <= a.last)
    assert biggest_pair <= plan.size < sum(s.size for s in plan.slots)  # reuse happened


def test_weights_counted_from_the_blob(mlp_t2_blob):
    blob = read_blob(mlp_t2_blob)
    report = mcu.fit(get_target("stm32l4"), mlp_t2_blob, code=mcu.CodeSize(0, 0, 0, "given"))
    parts = report.flash.parts
    assert sum(v for k, v in parts.items() if not k.startswith("runtime")) == blob.size
    _, shapes = mcu._blob_parts(blob)
    assert parts["weights"] == mcu.weight_bytes("t2", shapes)


BOOT_C = r"""
extern unsigned __StackTop, __data_start__, __data_end__, __etext, __bss_start__, __bss_end__;
extern unsigned char __edgeq_arena_start[], __edgeq_arena_end[];
void Reset_Handler(void);
__attribute__((section(".isr_vector"), used)) const void *const vectors[2] = {&__StackTop, (const void *)Reset_Handler};
static volatile int counter = 41;
static volatile int zero;
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
void Reset_Handler(void) {
    unsigned *s = &__etext, *d = &__data_start__;
    while (d < &__data_end__) *d++ = *s++;
    for (d = &__bss_start__; d < &__bss_end__;) *d++ = 0;
    for (unsigned char *p = __edgeq_arena_start; p < __edgeq_arena_end; p++) *p = 0x5a;
    counter += 1 + zero;
    semihost(0x04, counter == 42 && __edgeq_arena_end[-1] == 0x5a ? "edgeq-boot-ok\n" : "edgeq-boot-bad\n");
    semihost(0x18, (const void *)0x20026);
    for (;;) {}
}
"""


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("board", MCU_BOARDS)
def test_linker_script_boots_on_the_emulated_machine(board, tmp_path):
    """Vector table at the FLASH origin, .data copied, .bss zeroed, arena and stack writable in RAM."""
    t = get_target(board)
    (tmp_path / "memory.ld").write_text(mcu.linker_script(t, 64 * 1024, 8192))
    (tmp_path / "boot.c").write_text(BOOT_C)
    elf = tmp_path / "boot.elf"
    subprocess.run(["arm-none-eabi-gcc", "-Os", f"-mcpu={t.cpu['core']}", "-mthumb", "-nostdlib", "-nostartfiles",
                    "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-T", str(tmp_path / "memory.ld"),
                    str(tmp_path / "boot.c"), "-o", str(elf)], check=True)
    run = subprocess.run(["qemu-system-arm", "-M", t.section("emulator")["machine"], "-nographic", "-monitor", "none",
                          "-serial", "null", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                         check=False, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "edgeq-boot-ok" in run.stdout + run.stderr


@pytest.mark.skipif(not HAVE_ARM, reason="needs arm-none-eabi-gcc")
def test_runtime_code_size_is_the_firmware_image():
    size = mcu.runtime_code_size(get_target("stm32h7"))
    assert size.method == "firmware image" and 8_000 < size.text < 96_000 and size.bss > 0
    assert mcu.runtime_code_size(get_target("stm32h7")) == size  # cached build
