"""Microcontroller generator: does a blob fit the board, where does everything go, and the linker script.

Flash holds the whole blob (weights are executed in place, XIP) plus the runtime's code and
initialised data; SRAM holds the activation arena, the runtime's data/bss and the stack. Budgets
are the REAL board's (targets/<id>.toml [memory]) even when the emulated machine has more, so a
model that passes under qemu also fits the chip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.formats.packed import layout as packed_layout
from edgeq.graph import Graph, Tensor
from edgeq.targets.registry import Target

DEFAULT_STACK_BYTES = 8 * 1024  # the runtime never recurses and keeps buffers in the arena; 8 KiB covers
#                                 the deepest kernel frame + UART/protocol handler with room for an ISR
ARENA_ALIGN = 16  # every arena buffer starts 16-byte aligned (Helium/DSP loads, fp32 words)
ELEMENT_BYTES = {F.FMT_F32: 4, F.FMT_F16: 2, F.FMT_I32: 4, F.FMT_I8: 1, F.FMT_U8: 1}
WEIGHT_IDS = {fmt.id for fmt in FORMATS.values()}
TEST_FLAGS = L.TENSOR_TEST_INPUT | L.TENSOR_TEST_OUTPUT | L.TENSOR_TEST_LABEL
KERNEL_TIERS = [("helium", {"mve"}), ("cortex_m_dsp", {"dsp"})]  # best first; else the reference tier
TIER_FORMATS = {"helium": {"t2", "t158", "b1", "q4", "i8"}, "cortex_m_dsp": {"t2", "t158", "q4", "i8"}}  # else ref


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def activation_bytes(t: Tensor) -> int:
    """Bytes of an activation buffer: plain element types, or B1 bits packed in 64-bit words per row."""
    if t.format == F.FMT_B1:
        rows = 1
        for s in t.shape[:-1]:
            rows *= s
        return rows * -(-t.shape[-1] // 64) * 8
    count = 1
    for s in t.shape:
        count *= s
    return count * ELEMENT_BYTES[t.format]


@dataclass(frozen=True)
class Slot:
    """One activation buffer of the static arena plan, live from op `first` to op `last` (inclusive)."""

    tensor: int
    name: str
    offset: int
    size: int
    first: int
    last: int


@dataclass
class ArenaPlan:
    """Offsets of every activation in one arena; buffers whose lifetimes do not overlap share bytes."""

    size: int
    slots: list[Slot]

    def to_json(self) -> dict:
        return {"size": self.size, "align": ARENA_ALIGN, "slots": [asdict(s) for s in self.slots]}


def plan_arena(graph: Graph) -> ArenaPlan:
    """Greedy-by-size placement over liveness intervals (the TFLite Micro planner's strategy)."""
    n_ops = len(graph.ops)
    first: dict[int, int] = {i: -1 for i in graph.inputs}
    last: dict[int, int] = {i: -1 for i in graph.inputs}
    for k, op in enumerate(graph.ops):
        for i in op.outputs:
            first.setdefault(i, k)
            last[i] = max(last.get(i, k), k)
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].is_const:
                first.setdefault(i, k)
                last[i] = max(last.get(i, k), k)
    for i in graph.outputs:
        last[i] = n_ops
    order = sorted(first, key=lambda i: (-activation_bytes(graph.tensors[i]), first[i], i))
    placed: list[Slot] = []
    for i in order:
        size = _align(activation_bytes(graph.tensors[i]), ARENA_ALIGN)
        clashes = sorted((s.offset, s.offset + s.size) for s in placed
                         if s.first <= last[i] and first[i] <= s.last)
        offset = 0
        for lo, hi in clashes:
            if offset + size <= lo:
                break
            offset = max(offset, hi)
        placed.append(Slot(i, graph.tensors[i].name, offset, size, first[i], last[i]))
    placed.sort(key=lambda s: (s.offset, s.first))
    return ArenaPlan(max((s.offset + s.size for s in placed), default=0), placed)


def runtime_arena_size(blob_path: Path) -> int | None:
    """The C runtime planner's arena size (edgeq.runtime), or None while that binding is not available."""
    try:
        from edgeq.runtime import Session
    except ImportError:
        return None
    return int(Session(str(blob_path)).arena_size)


@dataclass(frozen=True)
class CodeSize:
    """Runtime code/data of the Cortex-M build, and how it was measured."""

    text: int
    data: int
    bss: int
    method: str  # "firmware image" | "given"


def runtime_code_size(target: Target) -> CodeSize:
    """Flash and RAM the firmware itself takes: the upload image (runtime with reference kernels, startup,
    UART driver, serial protocol; no blob) built for the target by edgeq.build.firmware, cached."""
    from edgeq.build.firmware import build_firmware

    return build_firmware(target).code_size


@dataclass(frozen=True)
class Region:
    """Use of one memory region against the real board's size."""

    name: str
    used: int
    available: int
    parts: dict[str, int]

    @property
    def margin(self) -> int:
        return self.available - self.used

    @property
    def fits(self) -> bool:
        return self.margin >= 0

    def to_json(self) -> dict:
        return {"used": self.used, "available": self.available, "margin": self.margin, "fits": self.fits,
                "parts": self.parts}


@dataclass
class FitReport:
    """The verdict for one blob on one board, with what would fit instead when it does not."""

    target: Target
    blob: Path
    flash: Region
    ram: Region
    arena: ArenaPlan
    arena_source: str
    code: CodeSize | None
    stack: int
    alternatives: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.flash.fits and self.ram.fits

    def to_json(self) -> dict:
        return {
            "target": self.target.id, "blob": str(self.blob), "fits": self.fits,
            "flash": self.flash.to_json(), "ram": self.ram.to_json(),
            "arena_bytes": self.ram.parts["arena"], "arena_source": self.arena_source,
            "code": asdict(self.code) if self.code else None, "stack_bytes": self.stack,
            "alternatives": self.alternatives, "notes": self.notes,
        }


def _blob_parts(blob) -> tuple[dict[str, int], list[tuple[int, int]]]:
    """Flash bytes of the blob by kind, and the (rows, cols) of its weight tensors."""
    parts = {"weights": 0, "other constants": 0, "bundled test data": 0}
    shapes = []
    for rec in blob.records:
        if not rec.flags & L.TENSOR_CONST:
            continue
        size = _align(rec.data_size, L.ALIGN)
        if rec.flags & TEST_FLAGS:
            parts["bundled test data"] += size
        elif rec.format in WEIGHT_IDS:
            parts["weights"] += size
            shapes.append((int(rec.shape[0]), int(rec.shape[1])))
        else:
            parts["other constants"] += size
    parts["container"] = blob.size - sum(parts.values())
    return parts, shapes


def weight_bytes(fmt: str, shapes: list[tuple[int, int]]) -> int:
    """Stored bytes of these weight matrices in `fmt` at its default block and scale kind."""
    f = FORMATS[fmt]
    return sum(_align(packed_layout(f, r, c, f.block, f.scale_kinds[0], False).nbytes, L.ALIGN) for r, c in shapes)


def fit(target: Target, blob_path: str | Path, stack_bytes: int | None = None,
        code: CodeSize | None = None) -> FitReport:
    """Flash and SRAM use of `blob_path` on an MCU board, with margins and the formats that would fit."""
    if target.family != "mcu":
        raise EdgeqError(f"target {target.id} is family {target.family}; `edgeq fit` is for mcu targets")
    blob_path = Path(blob_path)
    blob = read_blob(blob_path)
    mem = target.memory
    stack = stack_bytes if stack_bytes is not None else mem.get("stack_kb", DEFAULT_STACK_BYTES // 1024) * 1024
    notes = []
    if code is None:
        code = runtime_code_size(target)
    plan = plan_arena(blob.graph)
    arena, arena_source = plan.size, "edgeq static plan"
    runtime_arena = runtime_arena_size(blob_path)
    if runtime_arena is not None:
        arena, arena_source = runtime_arena, "runtime planner (edgeq.runtime)"
    blob_parts, shapes = _blob_parts(blob)
    code_text, code_data, code_bss = (code.text, code.data, code.bss) if code else (0, 0, 0)
    flash = Region("flash", blob.size + code_text + code_data, mem["flash_kb"] * 1024,
                   {**blob_parts, "runtime code": code_text, "runtime data (init)": code_data})
    ram = Region("ram", arena + stack + code_data + code_bss, mem["ram_kb"] * 1024,
                 {"arena": arena, "stack": stack, "runtime data+bss": code_data + code_bss})
    report = FitReport(target, blob_path, flash, ram, plan, arena_source, code, stack, notes=notes)
    if shapes:
        rest = flash.used - blob_parts["weights"]
        for fmt in FORMATS:
            used = rest + weight_bytes(fmt, shapes)
            report.alternatives[fmt] = {"flash_used": used, "flash_margin": flash.available - used,
                                        "fits": used <= flash.available and ram.fits}
    return report


def linker_script(target: Target, arena_bytes: int, stack_bytes: int, placement: str = "emulated") -> str:
    """GNU ld script: regions sized to the real board, placed at the emulated machine's (or the board's) addresses.

    With `emulated` placement a region is clipped to the emulated machine's size when that is smaller
    than the board's (e.g. the M55 board's MRAM vs the AN547's 512 KiB ITCM); a comment says so.
    """
    mem, emu = target.memory, target.section("emulator")
    if placement not in ("emulated", "board"):
        raise EdgeqError(f"placement must be 'emulated' or 'board', got {placement!r}")
    regions, notes = {}, []
    for name, key in (("FLASH", "flash"), ("RAM", "ram")):
        size = mem[f"{key}_kb"]
        origin = mem[f"{key}_origin"]
        if placement == "emulated":
            origin = emu[f"{key}_origin"]
            if emu[f"{key}_kb"] < size:
                notes.append(f"{name} clipped from the board's {size}K to the emulated {emu[f'{key}_kb']}K")
                size = emu[f"{key}_kb"]
        regions[name] = (origin, size)
    where = f"{emu['machine']} addresses" if placement == "emulated" else "board addresses"
    head = [f"/* generated by edgeq for target {target.id} ({target.name}) */",
            f"/* regions: the real board's sizes at {where}; arena {arena_bytes} B, stack {stack_bytes} B */"]
    head += [f"/* note: {n} */" for n in notes]
    return "\n".join(head) + f"""
MEMORY
{{
  FLASH (rx)  : ORIGIN = {regions['FLASH'][0]:#010x}, LENGTH = {regions['FLASH'][1]}K
  RAM   (rwx) : ORIGIN = {regions['RAM'][0]:#010x}, LENGTH = {regions['RAM'][1]}K
}}

ENTRY(Reset_Handler)
EDGEQ_ARENA_SIZE = {_align(arena_bytes, ARENA_ALIGN)};
EDGEQ_STACK_SIZE = {_align(stack_bytes, 8)};

SECTIONS
{{
  .text :
  {{
    KEEP(*(.isr_vector))
    *(.text*)
    KEEP(*(.init))
    KEEP(*(.fini))
    *(.rodata*)
  }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  .init_array : {{ __init_array_start = .; KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array)) __init_array_end = .; }} > FLASH
  .edgeq_blob : ALIGN(64) {{ __edgeq_blob_start = .; KEEP(*(.edgeq_blob)) __edgeq_blob_end = .; }} > FLASH
  .data : ALIGN(4) {{ __data_start__ = .; *(.data*) . = ALIGN(4); __data_end__ = .; }} > RAM AT > FLASH
  __etext = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(4) {{ __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end__ = .; }} > RAM
  .edgeq_arena (NOLOAD) : ALIGN(64)
  {{
    __edgeq_arena_start = .;
    . += EDGEQ_ARENA_SIZE;
    __edgeq_arena_end = .;
  }} > RAM
  .stack (NOLOAD) : ALIGN(8)
  {{
    __StackLimit = .;
    . += EDGEQ_STACK_SIZE;
    __StackTop = .;
  }} > RAM
  __edgeq_free_start = ALIGN(64);
  __edgeq_free_end = ORIGIN(RAM) + LENGTH(RAM);
  ASSERT(__edgeq_free_start <= __edgeq_free_end, "edgeq: data + bss + arena + stack overflow RAM")
  __edgeq_flash_start = ORIGIN(FLASH);
  __edgeq_flash_limit = ORIGIN(FLASH) + LENGTH(FLASH);
  __edgeq_image_end = __etext + SIZEOF(.data);
  __edgeq_ram_start = ORIGIN(RAM);
  __edgeq_ram_limit = ORIGIN(RAM) + LENGTH(RAM);
  PROVIDE(__stack = __StackTop);
  PROVIDE(end = __bss_end__);
}}
"""


def kernel_tier(target: Target) -> str:
    """The Cortex-M kernel tier the runtime will use on this core (reference when it has no DSP extension)."""
    features = set(target.features)
    return next((name for name, need in KERNEL_TIERS if need <= features), "ref")


def config(target: Target) -> dict:
    """The MCU build/memory configuration shown by `edgeq targets show`."""
    mem, emu = target.memory, target.section("emulator")
    tier = kernel_tier(target)
    return {
        "cc": target.build["cc"], "cflags": target.build["cflags"], "ldflags": target.build.get("ldflags", []),
        "kernel_tier": tier,
        "kernels": {f: target.section("kernels").get(
            f, f"{tier if f in TIER_FORMATS.get(tier, ()) else 'ref'}/{f}_matvec") for f in FORMATS},
        "flash": {"board": [hex(mem["flash_origin"]), mem["flash_kb"] * 1024],
                  "emulated": [hex(emu["flash_origin"]), emu["flash_kb"] * 1024]},
        "ram": {"board": [hex(mem["ram_origin"]), mem["ram_kb"] * 1024],
                "emulated": [hex(emu["ram_origin"]), emu["ram_kb"] * 1024]},
        "stack_bytes": mem.get("stack_kb", DEFAULT_STACK_BYTES // 1024) * 1024,
        "layout": target.layout, "machine": emu["machine"], "uart_base": hex(emu["uart_base"]),
    }
