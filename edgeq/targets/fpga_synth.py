"""Runs yosys and iverilog on generated engines: the ground truth the FPGA cost model is checked against.

Resource counts follow vendor reports: LUT = logic LUTs + LUTs used as distributed RAM / shift
registers; BRAM is counted in 18 Kb halves for Xilinx (a RAMB36 = 2) and in 4 Kb EBR for iCE40.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeq.errors import BuildError
from edgeq.targets import fpga_rtl as rtl

# LUTs per Xilinx distributed-RAM / SRL primitive (7-series and UltraScale+ slice docs, UG474/UG574).
XILINX_LUTRAM = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4,
    "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
    "SRL16E": 1, "SRLC32E": 1, "SRLC16E": 1,
}
FAMILIES = ("xc7", "xcup", "ice40")


@dataclass
class SynthResult:
    """Cell counts of one synthesized design (see module docstring for the counting rules)."""

    lut: int
    lutram: int  # LUTs of `lut` that are distributed RAM / SRL
    ff: int
    dsp: int
    bram18: int  # Xilinx: RAMB18 equivalents; iCE40: EBR (4 Kb) blocks
    spram: int
    carry: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def tool(name: str) -> str:
    """Path of an external tool, or a BuildError saying how to get it."""
    path = shutil.which(name)
    if not path:
        raise BuildError(f"`{name}` not found on PATH; install it (apt-get install yosys iverilog)")
    return path


def run(cmd: list[str], timeout: float, what: str, cwd: Path | None = None) -> str:
    """Runs a tool with a timeout; any failure becomes a BuildError quoting the tool's last output."""
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what} timed out after {timeout:.0f} s: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-1500:]
        raise BuildError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:3])} ...\n{tail}")
    return proc.stdout


def datdir() -> Path:
    """yosys's share directory (cells_sim.v, simlib.v)."""
    config = shutil.which("yosys-config")
    if config:
        return Path(run([config, "--datdir"], 30, "yosys-config").strip())
    return Path(tool("yosys")).resolve().parent.parent / "share" / "yosys"


def parse_stat(text: str, family: str) -> dict[str, int]:
    """Cell counts from the last `stat` report in yosys output: {cell type: count}."""
    start = text.rfind("Number of cells:")
    if start < 0:
        raise BuildError("yosys printed no `stat` report")
    cells: dict[str, int] = {}
    for line in text[start:].splitlines()[1:]:
        m = re.match(r"\s+(\$?\w+)\s+(\d+)\s*$", line)
        if m:
            cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    return cells


def summarize(cells: dict[str, int], family: str, seconds: float) -> SynthResult:
    """Counts resources the way vendor utilisation reports do."""
    if family == "ice40":
        return SynthResult(
            lut=cells.get("SB_LUT4", 0), lutram=0,
            ff=sum(n for c, n in cells.items() if c.startswith("SB_DFF")),
            dsp=cells.get("SB_MAC16", 0), bram18=cells.get("SB_RAM40_4K", 0),
            spram=cells.get("SB_SPRAM256KA", 0), carry=cells.get("SB_CARRY", 0), seconds=seconds,
        )
    lutram = sum(XILINX_LUTRAM[c] * n for c, n in cells.items() if c in XILINX_LUTRAM)
    return SynthResult(
        lut=sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c)) + lutram, lutram=lutram,
        ff=sum(n for c, n in cells.items() if re.fullmatch(r"FD[CPRS]E?(_1)?", c)),
        dsp=sum(n for c, n in cells.items() if c.startswith("DSP48")),
        bram18=sum(n * (2 if "36" in c else 1) for c, n in cells.items() if c.startswith("RAMB")),
        spram=cells.get("URAM288", 0), carry=sum(n for c, n in cells.items() if c.startswith("CARRY")),
        seconds=seconds,
    )


def synth_script(top: str, family: str, dsp: bool, stat_file: Path, netlist: Path | None) -> str:
    """The yosys command line: vendor synthesis script, `stat` teed to a file, optional netlist."""
    if family == "ice40":
        cmd = f"synth_ice40 -top {top}" + (" -dsp" if dsp else "")
    elif family in ("xc7", "xcup"):
        cmd = f"synth_xilinx -flatten -family {family} -top {top}" + ("" if dsp else " -nodsp")
    else:
        raise BuildError(f"unknown FPGA family {family!r}; known: {', '.join(FAMILIES)}")
    out = f"; write_verilog -noattr {netlist}" if netlist else ""
    return f"{cmd}; tee -q -o {stat_file} stat{out}"


def synthesize(
    spec: rtl.EngineSpec, family: str = "xc7", dsp: bool = True, netlist: Path | None = None, timeout: float = 900
) -> SynthResult:
    """Synthesizes the engine with yosys and returns its resource counts."""
    with tempfile.TemporaryDirectory(prefix="edgeq-synth-") as tmp:
        src = rtl.write(spec, tmp)
        t0 = time.monotonic()
        stat = Path(tmp, "stat.txt")
        script = synth_script(spec.name, family, dsp, stat, netlist)
        run([tool("yosys"), "-q", "-p", script, str(src)], timeout, f"yosys synthesis of {spec.name} ({family})")
        return summarize(parse_stat(stat.read_text(), family), family, time.monotonic() - t0)


def simulate(
    spec: rtl.EngineSpec, w: np.ndarray, x: np.ndarray, netlist: Path | None = None, family: str = "xc7",
    timeout: float = 300,
) -> np.ndarray:
    """Simulates the RTL (or a post-synthesis netlist of it) with iverilog; returns N×MH outputs."""
    with tempfile.TemporaryDirectory(prefix="edgeq-sim-") as tmp:
        tb = Path(tmp, "tb.v")
        tb.write_text(rtl.testbench(spec, w, x))
        sources = [str(tb)]
        if netlist is None:
            sources.append(str(rtl.write(spec, tmp)))
        else:
            lib = datdir() / ("ice40" if family == "ice40" else "xilinx") / "cells_sim.v"
            sources += [str(netlist), str(lib)]
        exe = Path(tmp, "sim.vvp")
        defines = ["-DNO_ICE40_DEFAULT_ASSIGNMENTS"] if family == "ice40" else []
        run([tool("iverilog"), "-g2012", *defines, "-o", str(exe), "-s", "tb", *sources], timeout,
            f"iverilog of {spec.name}")
        out = run([tool("vvp"), "-n", str(exe)], timeout, f"simulation of {spec.name}")
        return rtl.parse_outputs(spec, out)
