"""Target registry: loads and validates the board files `targets/<id>.toml` (data, not code).

The schema is written once, as data (`SCHEMA`): every section, key, type, allowed value and the
families a key applies to. A file that breaks it raises one EdgeqError (exit code 2) naming the
file and the key. Users add a board by dropping a TOML file into a directory listed in
`EDGEQ_TARGETS_PATH` (os.pathsep-separated); a user file with the id of a built-in board wins.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.targets import kernel_rules

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "targets"
ENV_PATH = "EDGEQ_TARGETS_PATH"

FAMILIES = ("host", "arm-linux", "android", "mcu", "fpga")
CPU_FAMILIES = ("host", "arm-linux", "android", "mcu")
LINUX_FAMILIES = ("host", "arm-linux", "android")
FEATURES = (
    # x86
    "avx2", "fma", "f16c", "avx512", "avx512vnni",
    # Armv8-A / Armv9-A
    "neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2",
    # Armv7E-M / Armv8-M
    "dsp", "fpu-sp", "fpu-dp", "mve", "mve-fp",
)
# Weight layouts a target may prefer. The value is the blob layout id (edgeq.formats.ids), or None
# while the layout is only planned: the packer then writes row-major and the runtime uses it as is.
LAYOUTS: dict[str, int | None] = {
    "row-major": 0,  # LAYOUT_ROW_MAJOR
    "rows4": 1,      # LAYOUT_ROWS4: T2/Q4 rows interleaved in groups of 4 for SDOT by element (docs/formats.md)
    "rows8": None,   # 8 rows interleaved, would feed SMMLA 2x8 tiles (i8mm); no kernels, no target uses it
    "mvau": None,    # PE x SIMD folded stream of a FINN-style MVAU (FPGA)
}
FPGA_FAMILIES = ("xilinx-7", "xilinx-usp", "ice40")
FPGA_MEMORY_KEYS = {"xilinx-7": ("bram18",), "xilinx-usp": ("bram18",), "ice40": ("ebr", "spram")}
NUMBER = (int, float)
TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table",
              NUMBER: "a number"}


@dataclass(frozen=True)
class Key:
    """One key of the schema: its type, whether it is required, and what values are allowed."""

    type: type | tuple[type, ...]
    doc: str
    required: bool = True
    choices: tuple[str, ...] | None = None
    items: type | tuple[type, ...] | None = None  # element type of a list
    positive: bool = False
    families: tuple[str, ...] | None = None  # the key exists only for these families (None: all)


@dataclass(frozen=True)
class Section:
    """One table of the board file; `families` says which board families have it."""

    keys: dict[str, Key]
    families: tuple[str, ...]
    required: bool = True
    free_keys: Key | None = None  # a table of name -> value whose names are checked by `key_choices`
    key_choices: tuple[str, ...] = ()


SOURCE = Key(str, "where the numbers of this section come from (datasheet, measurement, estimate)")
SCHEMA: dict[str, Section] = {
    "": Section({
        "id": Key(str, "the name users type (--target ID); equals the file name without .toml"),
        "name": Key(str, "human-readable board name"),
        "family": Key(str, "which generator applies", choices=FAMILIES),
        "default_format": Key(str, "weight format `-f` defaults to for this target", choices=tuple(FORMATS)),
        "layout": Key(str, "preferred weight layout", choices=tuple(LAYOUTS)),
        "description": Key(str, "one line on what the board is and why these numbers", required=False),
    }, FAMILIES),
    "cpu": Section({
        "arch": Key(str, "instruction set", choices=("x86_64", "aarch64", "armv7e-m", "armv8-m.main",
                                                     "armv8.1-m.main")),
        "core": Key(str, "core model (gcc -mcpu/-mtune name, or 'native')"),
        "cores": Key(int, "cores of that model the runtime may use", positive=True),
        "freq_mhz": Key(NUMBER, "sustained core clock in MHz", positive=True),
        "features": Key(list, "SIMD/ISA extensions the core has", items=str),
        "threads": Key(int, "default worker threads (default: cores)", required=False, positive=True),
        "source": SOURCE,
    }, CPU_FAMILIES),
    "memory": Section({
        "ram_mb": Key(int, "DRAM of the board in MiB", positive=True, families=LINUX_FAMILIES),
        "flash_kb": Key(int, "on-chip flash of the real board in KiB (weights execute in place)", positive=True,
                        families=("mcu",)),
        "flash_origin": Key(int, "flash base address on the real board", families=("mcu",)),
        "ram_kb": Key(int, "contiguous SRAM of the real board in KiB used for arena, data and stack",
                      positive=True, families=("mcu",)),
        "ram_origin": Key(int, "base address of that SRAM on the real board", families=("mcu",)),
        "ram_total_kb": Key(int, "all SRAM of the chip in KiB, for information", required=False, positive=True,
                            families=("mcu",)),
        "stack_kb": Key(int, "stack budget in KiB (default: edgeq.targets.mcu.DEFAULT_STACK_BYTES)",
                        required=False, positive=True, families=("mcu",)),
        "read_gbps": Key(list, "sustained read bandwidth in GB/s for 1, 2, ... threads (last entry holds beyond)",
                         items=NUMBER),
        "source": SOURCE,
    }, CPU_FAMILIES),
    "latency": Section({
        "ipc": Key(NUMBER, "sustained instructions per cycle of the mat-vec kernels (roofline compute)",
                   positive=True),
        "op_overhead_us": Key(NUMBER, "fixed cost per op (dispatch, thread sync) in microseconds"),
        "source": SOURCE,
    }, CPU_FAMILIES),
    "build": Section({
        "cc": Key(str, "C compiler (cross compiler for foreign targets)"),
        "package": Key(str, "Debian package that provides `cc` (named in the error when it is missing)"),
        "cflags": Key(list, "compiler flags (-O, -mcpu/-march/-mtune, float ABI)", items=str),
        "ldflags": Key(list, "extra linker flags", required=False, items=str),
        "static": Key(bool, "link statically (runs on any libc of the target)"),
    }, CPU_FAMILIES),
    "connect": Section({
        "default": Key(str, "device URL used when the user configures none (usually the emulator)"),
    }, CPU_FAMILIES),
    "emulator": Section({
        "machine": Key(str, "qemu-system-arm machine", choices=("mps2-an386", "mps2-an500", "mps2-an505",
                                                                "mps3-an547")),
        "flash_origin": Key(int, "where the image's code/rodata go on the emulated machine"),
        "flash_kb": Key(int, "size of that emulated region in KiB", positive=True),
        "ram_origin": Key(int, "where data, arena and stack go on the emulated machine"),
        "ram_kb": Key(int, "size of that emulated region in KiB", positive=True),
        "uart_base": Key(int, "CMSDK UART0 base address (as seen by the core after reset)"),
        "core_hz": Key(int, "system clock of the emulated image that SysTick counts (qemu's sysclk_frq)",
                       positive=True),
        "uart_rx_irq": Key(int, "external interrupt number of UART0's receive interrupt (wakes the idle core)"),
        "source": SOURCE,
    }, ("mcu",)),
    "firmware": Section({
        "board": Key(str, "board-support file of the real board (runtimes/firmware/board_BOARD.c), "
                          "used for --placement board images", choices=("nucleo_h743",)),
        "uart": Key(str, "the UART the protocol uses on the real board and where it comes out (informative)"),
        "baud": Key(int, "baud rate of that UART", positive=True),
        "flash_tool": Key(str, "programmer used by `edgeq deploy --connect serial://...`", choices=("pyocd", "openocd")),
        "flash_target": Key(str, "pyOCD target name, or OpenOCD board config file"),
        "source": SOURCE,
    }, ("mcu",), required=False),
    "kernels": Section({
        "rules": Key(list, "per-shape kernel choice, first match wins: tables { format = \"t2\"|\"t158\", "
                           "kernel = \"lut\"|\"dot\", min_k, max_k, min_m, max_m } (docs/kernels-arm.md); the "
                           "packer writes the choice into the blob", required=False, items=dict),
        "source": Key(str, "where the rules come from (benchmark run, estimate)", required=False),
    }, ("host", "arm-linux", "android", "mcu"), required=False,
                       free_keys=Key(str, "kernel name overriding the generator's choice for that format"),
                       key_choices=tuple(FORMATS)),
    "power": Section({
        "idle_w": Key(NUMBER, "board power when idle, W"),
        "load_w": Key(NUMBER, "board power while running inference, W", positive=True),
        "source": SOURCE,
    }, FAMILIES, required=False),
    "security": Section({
        "require_signature": Key(bool, "refuse blobs without a valid Ed25519 signature"),
    }, FAMILIES),
    "fpga": Section({
        "part": Key(str, "vendor part number"),
        "family": Key(str, "device family (selects the cost model's constants)", choices=FPGA_FAMILIES),
        "lut": Key(int, "logic LUTs (LUT6 on Xilinx, LUT4 on iCE40)", positive=True),
        "ff": Key(int, "flip-flops", positive=True),
        "dsp": Key(int, "DSP slices (DSP48E1/E2, iCE40 MAC16)"),
        "bram18": Key(int, "18 Kb block RAMs (a RAMB36 counts 2)", required=False),
        "ebr": Key(int, "iCE40 4 Kb embedded block RAMs", required=False),
        "spram": Key(int, "iCE40 256 Kb single-port RAMs", required=False),
        "lutram": Key(int, "LUTs usable as distributed RAM (SLICEM)", required=False),
        "clock_mhz": Key(NUMBER, "fabric clock the cost model assumes", positive=True),
        "source": SOURCE,
    }, ("fpga",)),
}


@dataclass(frozen=True)
class Target:
    """A validated board file. Sections are plain dicts exactly as written (see SCHEMA)."""

    id: str
    name: str
    family: str
    default_format: str
    layout: str
    path: Path
    data: dict[str, Any] = field(repr=False)

    def section(self, name: str) -> dict[str, Any]:
        """A table of the board file ({} when the family has none)."""
        return self.data.get(name, {})

    @property
    def cpu(self) -> dict[str, Any]:
        return self.section("cpu")

    @property
    def memory(self) -> dict[str, Any]:
        return self.section("memory")

    @property
    def build(self) -> dict[str, Any]:
        return self.section("build")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.cpu.get("features", ()))

    @property
    def threads(self) -> int:
        return int(self.cpu.get("threads", self.cpu.get("cores", 1)))

    @property
    def connect(self) -> str:
        return self.section("connect").get("default", "")

    def read_gbps(self, threads: int = 1) -> float:
        """Read bandwidth with `threads` threads (the last measured entry holds for more)."""
        bw = self.memory["read_gbps"]
        return float(bw[min(threads, len(bw)) - 1])


def _type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, kind)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_key(where: Callable[[str], str], name: str, key: Key, value: Any) -> None:
    if not _type_ok(value, key.type):
        raise EdgeqError(f"{where(name)}: expected {TYPE_NAMES[key.type]}, got {_show(value)}")
    if key.items is not None:
        for i, item in enumerate(value):
            if not _type_ok(item, key.items):
                raise EdgeqError(f"{where(name)}[{i}]: expected {TYPE_NAMES[key.items]}, got {_show(item)}")
        if not value:
            raise EdgeqError(f"{where(name)}: must not be empty")
    if key.positive and (value <= 0 if not isinstance(value, list) else min(value) <= 0):
        raise EdgeqError(f"{where(name)}: must be positive, got {_show(value)}")
    if key.choices is not None and value not in key.choices:
        raise EdgeqError(f"{where(name)}: {_show(value)} is not one of {', '.join(key.choices)}")
    if name == "features":
        for feature in value:
            if feature not in FEATURES:
                raise EdgeqError(f"{where(name)}: unknown feature {feature!r} (known: {', '.join(FEATURES)})")


def _check_section(path: Path, title: str, spec: Section, table: dict, family: str) -> None:
    def where(key: str) -> str:
        return f"{path}: [{title}] {key}" if title else f"{path}: {key}"

    if spec.free_keys is not None:
        for name, value in table.items():
            if name in spec.keys:
                _check_key(where, name, spec.keys[name], value)
                continue
            if name not in spec.key_choices:
                raise EdgeqError(f"{where(name)}: unknown key (expected one of "
                                 f"{', '.join([*spec.key_choices, *spec.keys])})")
            _check_key(where, name, spec.free_keys, value)
        return
    keys = {k: v for k, v in spec.keys.items() if v.families is None or family in v.families}
    for name, value in table.items():
        if name not in keys:
            extra = f" for family {family}" if name in spec.keys else ""
            raise EdgeqError(f"{where(name)}: unknown key{extra} (allowed: {', '.join(keys)})")
        _check_key(where, name, keys[name], value)
    for name, key in keys.items():
        if key.required and name not in table:
            raise EdgeqError(f"{where(name)}: missing ({key.doc})")


def _check_rules(path: Path, data: dict) -> None:
    """Checks that span keys: the ones a per-key schema cannot express."""
    if data["id"] != path.stem:
        raise EdgeqError(f"{path}: id: {data['id']!r} must equal the file name {path.stem!r}")
    fpga = data.get("fpga")
    if fpga is not None:
        wanted = FPGA_MEMORY_KEYS[fpga["family"]]
        for name in ("bram18", "ebr", "spram"):
            if name in wanted and name not in fpga:
                raise EdgeqError(f"{path}: [fpga] {name}: missing (required for family {fpga['family']})")
            if name not in wanted and name in fpga:
                raise EdgeqError(f"{path}: [fpga] {name}: not used by family {fpga['family']} "
                                 f"(use {', '.join(wanted)})")
    if "rules" in data.get("kernels", {}):
        kernel_rules.parse_rules(path, data["kernels"]["rules"])
    for section in ("memory", "emulator"):
        for name in ("flash_origin", "ram_origin"):
            value = data.get(section, {}).get(name)
            if value is not None and not 0 <= value < 1 << 32:
                raise EdgeqError(f"{path}: [{section}] {name}: {value:#x} is not a 32-bit address")


def validate(data: dict, path: Path) -> Target:
    """Checks parsed TOML against SCHEMA; returns the Target or raises one EdgeqError naming file and key."""
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for name, value in top.items():
        if name in SCHEMA:
            raise EdgeqError(f"{path}: {name}: expected a table [{name}], got {_show(value)}")
    _check_section(path, "", SCHEMA[""], top, "")
    family = data["family"]
    for title, table in data.items():
        if not isinstance(table, dict):
            continue
        spec = SCHEMA.get(title)
        if spec is None or not title:
            known = ", ".join(f"[{s}]" for s in SCHEMA if s)
            raise EdgeqError(f"{path}: [{title}]: unknown section (known: {known})")
        if family not in spec.families:
            raise EdgeqError(f"{path}: [{title}]: not used by family {family}")
        _check_section(path, title, spec, table, family)
    for title, spec in SCHEMA.items():
        if title and spec.required and family in spec.families and title not in data:
            raise EdgeqError(f"{path}: [{title}]: missing section (required for family {family})")
    _check_rules(path, data)
    return Target(data["id"], data["name"], family, data["default_format"], data["layout"], path, data)


def load_file(path: str | os.PathLike) -> Target:
    """Reads and validates one board file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgeqError(f"{path}: no such target file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeqError(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise EdgeqError(f"{path}: not valid TOML ({e})") from None
    return validate(data, path)


def search_path() -> list[Path]:
    """Directories searched for board files: EDGEQ_TARGETS_PATH entries first, then the built-ins."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    return [*extra, BUILTIN_DIR]


def target_files() -> dict[str, Path]:
    """id -> file over the search path; earlier directories win, so users can override a built-in board."""
    found: dict[str, Path] = {}
    for directory in search_path():
        if not directory.is_dir():
            if directory != BUILTIN_DIR:
                raise EdgeqError(f"{ENV_PATH}: {directory} is not a directory")
            continue
        for path in sorted(directory.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def list_targets() -> list[Target]:
    """Every board on the search path, validated, sorted by family then id."""
    targets = [load_file(p) for p in target_files().values()]
    return sorted(targets, key=lambda t: (FAMILIES.index(t.family), t.id))


def get_target(target_id: str) -> Target:
    """The board `target_id`; an unknown id is an error that lists the valid ones."""
    files = target_files()
    if target_id not in files:
        raise EdgeqError(f"unknown target {target_id!r}; valid targets: {', '.join(sorted(files))} "
                         f"(add one by dropping a TOML file into a directory on {ENV_PATH})")
    return load_file(files[target_id])


def fpga_device(target_id: str):
    """The [fpga] table of a board as the FPGA cost model's FpgaDevice."""
    from edgeq.targets.fpga import FpgaDevice

    t = get_target(target_id)
    if t.family != "fpga":
        raise EdgeqError(f"target {target_id!r} is family {t.family}, not an FPGA")
    f = t.section("fpga")
    family = {"xilinx-7": "xc7", "xilinx-usp": "xcup", "ice40": "ice40"}[f["family"]]
    bram = f["ebr"] if f["family"] == "ice40" else f["bram18"]
    return FpgaDevice(t.id, family, f["lut"], f["ff"], f["dsp"], bram, float(f["clock_mhz"]), f.get("lutram", 0),
                      f"{f['part']}: {f['source']}")
