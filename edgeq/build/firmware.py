"""Builds the Cortex-M firmware (runtimes/firmware) for an MCU target, cached like the runtime build.

Two kinds of image: *upload* (no blob inside; blobs arrive over serial into RAM, for fast iteration)
and *linked* (the blob is linked into flash and executed in place, as in production). The linker
script comes from edgeq.targets.mcu: the real board's flash/RAM sizes, placed at the emulated
machine's addresses (`emulated`, runs under qemu-system-arm, CMSDK UART) or the board's (`board`,
the board-support file named in the target's [firmware] table).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeq.build.builder import RUNTIME_DIR, cache_root, copy_out, run_make, source_files, toolchain
from edgeq.errors import BuildError, EdgeqError
from edgeq.targets import mcu
from edgeq.targets.registry import Target

FIRMWARE_FILES = ("firmware.elf", "firmware.bin", "firmware.map", "firmware.size", "memory.ld", "firmware.json")


@dataclass(frozen=True)
class FirmwareBuild:
    """A built image and the numbers the deploy report needs."""

    target: str
    directory: Path
    elf: Path
    bin: Path
    placement: str
    linked_blob: bool
    sections: dict[str, int]
    cached: bool

    @property
    def code_size(self) -> mcu.CodeSize:
        """Flash/RAM the firmware itself takes (blob, arena and stack excluded), as edgeq fit counts it."""
        s = self.sections
        text = s.get(".text", 0) + s.get(".ARM.exidx", 0) + s.get(".init_array", 0)
        return mcu.CodeSize(text, s.get(".data", 0), s.get(".bss", 0), "firmware image")

    def to_json(self) -> dict:
        return {"target": self.target, "directory": str(self.directory), "elf": str(self.elf), "bin": str(self.bin),
                "placement": self.placement, "linked_blob": self.linked_blob, "sections": self.sections,
                "cached": self.cached}


def make_vars(target: Target, placement: str, public_key: bytes | None = None, tier: str = "auto") -> dict[str, str]:
    """The firmware Makefile's variables for this target and placement; a public key is compiled in and
    makes the image refuse every blob not signed by it."""
    if target.family != "mcu":
        raise EdgeqError(f"target {target.id} is family {target.family}: firmware is for mcu targets")
    emu = target.section("emulator")
    cflags = [f for f in target.build["cflags"] if f not in ("-ffunction-sections", "-fdata-sections")]
    vars_ = {"CC": target.build["cc"], "TARGET_CFLAGS": " ".join(cflags), "EDGEQ_CORE": target.cpu["core"],
             "REQUIRE_SIGNATURE": "1" if target.section("security").get("require_signature") else "0"}
    if tier not in ("auto", "ref"):
        raise EdgeqError(f"firmware kernel tier must be 'auto' or 'ref', got {tier!r}")
    if tier == "ref":
        vars_["TIER"] = "ref"
    if public_key is not None:
        if len(public_key) != 32:
            raise EdgeqError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
        vars_["REQUIRE_SIGNATURE"] = "1"
        vars_["PUBLIC_KEY_DEFS"] = "-DEDGEQ_PUBLIC_KEY=" + ",".join(f"{b:#04x}" for b in public_key)
    if placement == "emulated":
        vars_["BOARD"] = "cmsdk"
        vars_["BOARD_DEFS"] = (f"-DEDGEQ_UART_BASE={emu['uart_base']:#x}u -DEDGEQ_CORE_HZ={emu['core_hz']}u "
                               f"-DEDGEQ_UART_IRQ={emu['uart_rx_irq']}")
    elif placement == "board":
        fw = target.section("firmware")
        if not fw.get("board"):
            raise EdgeqError(f"target {target.id} has no board-support file ([firmware] board): only emulated "
                             "images can be built for it")
        vars_["BOARD"] = fw["board"]
        vars_["BOARD_DEFS"] = f"-DEDGEQ_CORE_HZ={int(target.cpu['freq_mhz'] * 1e6)}u -DEDGEQ_BAUD={fw.get('baud', 115200)}"
    else:
        raise EdgeqError(f"placement must be 'emulated' or 'board', got {placement!r}")
    return vars_


def _sections(size_text: str) -> dict[str, int]:
    out = {}
    for line in size_text.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+\d+", line)
        if m and not m.group(1).startswith((".debug", ".comment", ".ARM.attributes")):
            out[m.group(1)] = int(m.group(2))
    return out


def build_firmware(target: Target, blob: Path | None = None, *, placement: str = "emulated",
                   arena_bytes: int = 0, stack_bytes: int | None = None, out: Path | None = None,
                   public_key: bytes | None = None, tier: str = "auto", source: Path = RUNTIME_DIR) -> FirmwareBuild:
    """Builds (or reuses) the image; `blob` links a model into flash, `arena_bytes` sizes its static arena,
    `public_key` makes it run only blobs signed by that key, `tier="ref"` keeps to the reference kernels."""
    vars_ = make_vars(target, placement, public_key, tier)
    cc, version = toolchain(target.build["cc"], target.build["package"])
    if shutil.which(cc[: -len("gcc")] + "objcopy" if cc.endswith("gcc") else "objcopy") is None:
        raise BuildError("arm-none-eabi-objcopy not found; install binutils-arm-none-eabi (tools/bootstrap.sh)")
    stack = stack_bytes if stack_bytes is not None else \
        target.memory.get("stack_kb", mcu.DEFAULT_STACK_BYTES // 1024) * 1024
    script = mcu.linker_script(target, arena_bytes, stack, placement)
    h = hashlib.sha256(json.dumps({"vars": vars_, "cc": version, "script": script}, sort_keys=True).encode())
    for path in source_files(source):
        h.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    if blob is not None:
        h.update(b"blob\0" + Path(blob).read_bytes())
    final = cache_root() / "firmware" / f"{target.id}-{placement}-{h.hexdigest()[:16]}"
    cached = (final / "firmware.json").is_file()
    if not cached:
        final.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.id}-", dir=final.parent))
        try:
            work = stage / "src"
            shutil.copytree(source, work, ignore=shutil.ignore_patterns("build", "*.o", "*.a", "*.so", "*.d"))
            (stage / "memory.ld").write_text(script)
            args = [f"{k}={v}" for k, v in vars_.items()]
            args += [f"LDSCRIPT={stage / 'memory.ld'}", f"BUILD={stage / 'out'}"]
            if blob is not None:
                shutil.copy2(blob, stage / "model.edgeq")
                args.append(f"BLOB={stage / 'model.edgeq'}")
            run_make(work / "firmware", args)
            for name in FIRMWARE_FILES[:4]:
                shutil.copy2(stage / "out" / name, stage / name)
            sections = _sections((stage / "firmware.size").read_text())
            (stage / "firmware.json").write_text(json.dumps({
                "target": target.id, "placement": placement, "linked_blob": blob is not None, "make_vars": vars_,
                "arena_bytes": arena_bytes, "stack_bytes": stack, "sections": sections}, indent=2))
            shutil.rmtree(work)
            shutil.rmtree(stage / "out")
            try:
                stage.rename(final)
            except OSError:  # a concurrent build of the same key won
                if not (final / "firmware.json").is_file():
                    raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    meta = json.loads((final / "firmware.json").read_text())
    directory = copy_out(final, out, list(FIRMWARE_FILES))
    return FirmwareBuild(target.id, directory, directory / "firmware.elf", directory / "firmware.bin", placement,
                         bool(meta["linked_blob"]), meta["sections"], cached)
