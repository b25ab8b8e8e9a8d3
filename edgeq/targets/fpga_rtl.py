"""Synthesizable Verilog-2001 for the FINN-MVAU-style dot-product engine the FPGA cost model describes.

The RTL exists so the cost model can be checked against real synthesis (yosys) and so users get a
starting point for a hardware flow. Weights live in a per-PE memory written through a port (never
constants, which synthesis would fold away); the input is a valid/ready stream.

Engine for one layer (MH outputs, MW inputs), folded by PE (divides MH) and SIMD (divides MW):

* PE p owns rows r = nf·PE + p; its memory word at address nf·SF + sf holds W[r, sf·SIMD : (sf+1)·SIMD],
  lane i in bits [i·WB +: WB] (NF = MH/PE neuron folds, SF = MW/SIMD synapse folds).
* Input: SF beats of SIMD lanes per vector (lane i = x[sf·SIMD + i], AB bits each); with NF > 1 the
  vector is buffered and replayed, so ``in_ready`` is high only during neuron fold 0.
* Output: one ``out_valid`` beat per neuron fold; PE p's accumulator in out_data[p·ACCW +: ACCW]
  = y[nf·PE + p]. There is no output back-pressure: the consumer takes every beat.
* Pipeline: read weights and input (1) → lane products and adder tree, registered (2) → accumulate (3).

Lane arithmetic per format (the numpy reference is :func:`reference`):

* ``xnor``: 1-bit weights and activations, result = number of matching bits (popcount of XNOR);
  with bit 1 ⇒ −1 the ±1 dot product is 2·matches − MW (docs/numerics.md).
* ``binary``: 1-bit weights (1 ⇒ −1) × signed AB-bit activations: ±x.
* ``ternary``: 2-bit codes c ∈ {0, 1, 2} ⇒ w = c − 1 (T2 semantics; T158 is repacked to 2-bit codes
  on the FPGA) × signed activations: add, subtract or skip — no multipliers.
* ``int4`` / ``int8``: signed weights × signed activations (DSP or LUT multipliers at synthesis).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError

WEIGHT_BITS = {"xnor": 1, "binary": 1, "ternary": 2, "int4": 4, "int8": 8}


def clog2(n: int) -> int:
    """Bits needed to index n items (Verilog $clog2)."""
    return max(0, (int(n) - 1).bit_length())


@dataclass(frozen=True)
class EngineSpec:
    """One folded dot-product engine: the unit both RTL and cost model describe."""

    fmt: str
    pe: int
    simd: int
    abits: int
    mw: int
    mh: int

    def __post_init__(self) -> None:
        if self.fmt not in WEIGHT_BITS:
            raise EdgeqError(f"unknown FPGA weight format {self.fmt!r}; known: {', '.join(WEIGHT_BITS)}")
        if self.fmt == "xnor" and self.abits != 1:
            raise EdgeqError("xnor engines take 1-bit activations")
        if self.fmt != "xnor" and not 2 <= self.abits <= 16:
            raise EdgeqError(f"activation bits must be 2..16 for {self.fmt}, got {self.abits}")
        if self.pe < 1 or self.mh % self.pe:
            raise EdgeqError(f"PE={self.pe} must divide MH={self.mh}")
        if self.simd < 1 or self.mw % self.simd:
            raise EdgeqError(f"SIMD={self.simd} must divide MW={self.mw}")

    @property
    def wbits(self) -> int:
        return WEIGHT_BITS[self.fmt]

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def depth(self) -> int:
        """Words per PE weight memory."""
        return self.nf * self.sf

    @property
    def prod_bits(self) -> int:
        """Width of one lane result."""
        if self.fmt == "xnor":
            return 1
        if self.fmt in ("binary", "ternary"):
            return self.abits + 1
        return self.wbits + self.abits

    @property
    def signed(self) -> bool:
        return self.fmt != "xnor"

    @property
    def dot_bits(self) -> int:
        """Width of the adder-tree output (one SIMD-wide partial dot product)."""
        if self.fmt == "xnor":
            return clog2(self.simd + 1)
        return self.prod_bits + clog2(self.simd)

    @property
    def acc_bits(self) -> int:
        if self.fmt == "xnor":
            return clog2(self.mw + 1)
        return self.prod_bits + clog2(self.mw)

    @property
    def name(self) -> str:
        return f"mvau_{self.fmt}_a{self.abits}_pe{self.pe}_s{self.simd}_w{self.mw}_h{self.mh}"


def tree_levels(simd: int, width: int, grow: bool = True) -> list[tuple[int, int]]:
    """(adders, output width) per level of a balanced adder tree over `simd` operands of `width` bits."""
    levels, n = [], simd
    while n > 1:
        width += 1 if grow else 0
        levels.append((n // 2, width))
        n = n - n // 2
    return levels


def _lane_expr(spec: EngineSpec, i: int) -> str:
    wb, ab = spec.wbits, spec.abits
    w = f"w[{i * wb + wb - 1}:{i * wb}]" if wb > 1 else f"w[{i}]"
    x = f"$signed(x[{i * ab + ab - 1}:{i * ab}])" if ab > 1 else f"x[{i}]"
    if spec.fmt == "xnor":
        return f"~({w} ^ {x})"
    if spec.fmt == "binary":
        return f"{w} ? -{x} : {x}"
    if spec.fmt == "ternary":
        return f"({w} == 2'd2) ? {x} : ({w} == 2'd0) ? -{x} : {spec.prod_bits}'sd0"
    return f"$signed({w}) * {x}"


def _dot_module(spec: EngineSpec) -> str:
    """Lanes + balanced adder tree; generated unrolled so any SIMD (not only powers of two) works."""
    s, sig = spec.simd, "signed " if spec.signed else ""
    lines = [
        f"module {spec.name}_dot (",
        f"  input  wire [{s * spec.wbits - 1}:0] w,",
        f"  input  wire [{s * spec.abits - 1}:0] x,",
        f"  output wire {sig}[{spec.dot_bits - 1}:0] dot",
        ");",
    ]
    width = spec.prod_bits
    names = []
    for i in range(s):
        lines.append(f"  wire {sig}[{width - 1}:0] l0_{i} = {_lane_expr(spec, i)};")
        names.append(f"l0_{i}")
    for level, (_, out_w) in enumerate(tree_levels(s, width), start=1):
        nxt = []
        for j in range(0, len(names) - 1, 2):
            lines.append(f"  wire {sig}[{out_w - 1}:0] l{level}_{j // 2} = {names[j]} + {names[j + 1]};")
            nxt.append(f"l{level}_{j // 2}")
        if len(names) % 2:
            nxt.append(names[-1])
        names = nxt
    lines.append(f"  assign dot = {names[0]};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def verilog(spec: EngineSpec) -> str:
    """The engine as a Verilog-2001 source (top module `spec.name`, helper `spec.name`_dot)."""
    s, pe = spec, spec.pe
    ww, iw, acc, dot = s.simd * s.wbits, s.simd * s.abits, s.acc_bits, s.dot_bits
    ab, peb = max(1, clog2(s.depth)), max(1, clog2(pe))
    sfb, nfb = max(1, clog2(s.sf)), max(1, clog2(s.nf))
    sig = "signed " if s.signed else ""
    ext = f"{{{{{acc - dot}{{dot_q[{dot - 1}]}}}}, dot_q}}" if s.signed else f"{{{acc - dot}'d0, dot_q}}"
    if acc == dot:
        ext = "dot_q"
    buffered = s.nf > 1
    ibuf = (
        f"""  reg [{iw - 1}:0] ibuf [0:{s.sf - 1}];
  reg [{iw - 1}:0] ib_q;
  reg use_in1;
  always @(posedge clk) if (step) begin
    ib_q <= ibuf[sf];
    use_in1 <= (nf == 0);
    if (nf == 0) ibuf[sf] <= in_data;
  end
  wire [{iw - 1}:0] x1 = use_in1 ? in_q : ib_q;
"""
        if buffered
        else f"  wire [{iw - 1}:0] x1 = in_q;\n"
    )
    return (
        f"""// Generated by edgeq.targets.fpga_rtl: {s.fmt} weights, {s.abits}-bit activations,
// MW={s.mw} MH={s.mh} PE={pe} SIMD={s.simd}; {s.depth} words x {ww} bits weight memory per PE.
{_dot_module(s)}
module {s.name} (
  input  wire clk,
  input  wire rst,
  input  wire wr_en,
  input  wire [{peb - 1}:0] wr_pe,
  input  wire [{ab - 1}:0] wr_addr,
  input  wire [{ww - 1}:0] wr_data,
  input  wire in_valid,
  output wire in_ready,
  input  wire [{iw - 1}:0] in_data,
  output reg  out_valid,
  output wire [{pe * acc - 1}:0] out_data
);
  reg [{sfb - 1}:0] sf;
  reg [{nfb - 1}:0] nf;
  reg [{ab - 1}:0] raddr;
  assign in_ready = (nf == 0);
  wire step = (nf != 0) || in_valid;
  always @(posedge clk) begin
    if (rst) begin
      sf <= 0; nf <= 0; raddr <= 0;
    end else if (step) begin
      raddr <= (raddr == {s.depth - 1}) ? 0 : raddr + 1;
      if (sf == {s.sf - 1}) begin
        sf <= 0;
        nf <= (nf == {s.nf - 1}) ? 0 : nf + 1;
      end else sf <= sf + 1;
    end
  end
  reg v1, first1, last1, v2, first2, last2;
  reg [{iw - 1}:0] in_q;
  always @(posedge clk) begin
    v1 <= step && !rst;
    v2 <= v1 && !rst;
    out_valid <= v2 && last2 && !rst;
    first2 <= first1;
    last2 <= last1;
    if (step) begin
      in_q <= in_data;
      first1 <= (sf == 0);
      last1 <= (sf == {s.sf - 1});
    end
  end
{ibuf}
  genvar p;
  generate for (p = 0; p < {pe}; p = p + 1) begin : pe
    reg [{ww - 1}:0] wmem [0:{s.depth - 1}];
    reg [{ww - 1}:0] w_q;
    always @(posedge clk) begin
      if (wr_en && wr_pe == p) wmem[wr_addr] <= wr_data;
      if (step) w_q <= wmem[raddr];
    end
    wire {sig}[{dot - 1}:0] dot;
    {s.name}_dot u_dot (.w(w_q), .x(x1), .dot(dot));
    reg {sig}[{dot - 1}:0] dot_q;
    reg {sig}[{acc - 1}:0] acc;
    always @(posedge clk) begin
      dot_q <= dot;
      if (v2) acc <= (first2 ? {acc}'d0 : acc) + {ext};
    end
    assign out_data[p * {acc} +: {acc}] = acc;
  end endgenerate
endmodule
"""
    )


def random_case(spec: EngineSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random integer weights (MH×MW, the stored codes' values) and inputs (N×MW) for a spec."""
    rng = np.random.default_rng(seed)
    if spec.fmt in ("xnor", "binary"):
        w = rng.integers(0, 2, (spec.mh, spec.mw))
    elif spec.fmt == "ternary":
        w = rng.integers(-1, 2, (spec.mh, spec.mw))
    else:
        half = 1 << (spec.wbits - 1)
        w = rng.integers(-half, half, (spec.mh, spec.mw))
    if spec.fmt == "xnor":
        x = rng.integers(0, 2, (n, spec.mw))
    else:
        half = 1 << (spec.abits - 1)
        x = rng.integers(-half, half, (n, spec.mw))
    return w.astype(np.int64), x.astype(np.int64)


def reference(spec: EngineSpec, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integer dot products the engine must produce (N×MH), from weight values / bits and inputs."""
    if spec.fmt == "xnor":
        return (w[None, :, :] == x[:, None, :]).sum(axis=2)
    if spec.fmt == "binary":
        return x @ np.where(w == 1, -1, 1).T
    return x @ w.T


def weight_words(spec: EngineSpec, w: np.ndarray) -> list[tuple[int, int, int]]:
    """(pe, address, word) writes that load the weight memories."""
    codes = w + 1 if spec.fmt == "ternary" else w
    mask = (1 << spec.wbits) - 1
    writes = []
    for p in range(spec.pe):
        for nf in range(spec.nf):
            row = codes[nf * spec.pe + p]
            for sf in range(spec.sf):
                word = 0
                for i, v in enumerate(row[sf * spec.simd : (sf + 1) * spec.simd]):
                    word |= (int(v) & mask) << (i * spec.wbits)
                writes.append((p, nf * spec.sf + sf, word))
    return writes


def input_words(spec: EngineSpec, x: np.ndarray) -> list[int]:
    """Input stream beats, SF per vector."""
    mask = (1 << spec.abits) - 1
    beats = []
    for vec in x:
        for sf in range(spec.sf):
            word = 0
            for i, v in enumerate(vec[sf * spec.simd : (sf + 1) * spec.simd]):
                word |= (int(v) & mask) << (i * spec.abits)
            beats.append(word)
    return beats


def testbench(spec: EngineSpec, w: np.ndarray, x: np.ndarray, dut: str | None = None, seed: int = 1) -> str:
    """A self-contained testbench: loads weights, streams inputs with random stalls, prints outputs.

    Each output beat prints as one line of PE decimal values (signed for signed formats), in PE order.
    `dut` names the module to instantiate (default the engine itself; a post-synthesis netlist keeps it).
    """
    s = spec
    ww, iw = s.simd * s.wbits, s.simd * s.abits
    ab, peb = max(1, clog2(s.depth)), max(1, clog2(s.pe))
    writes, beats = weight_words(s, w), input_words(s, x)
    stalls = np.random.default_rng(seed).integers(0, 4, len(beats)) == 0
    wlines = "\n".join(
        f"    wr_pe = {p}; wr_addr = {a}; wr_data = {ww}'h{word:x}; `TICK" for p, a, word in writes
    )
    blines = "\n".join(
        ("    in_valid = 0; `TICK\n" if stall else "")
        + f"    in_valid = 1; in_data = {iw}'h{word:x}; while (!in_ready) begin `TICK end `TICK"
        for word, stall in zip(beats, stalls)
    )
    fmt = " ".join(["%0d"] * s.pe)
    sig = "$signed" if s.signed else ""
    args = ", ".join(f"{sig}(out_data[{p * s.acc_bits} +: {s.acc_bits}])" for p in range(s.pe))
    expected_beats = len(x) * s.nf
    return f"""`timescale 1ns/1ps
`define TICK @(posedge clk); #1;
module tb;
  reg clk = 0, rst = 1, wr_en = 0, in_valid = 0;
  reg [{peb - 1}:0] wr_pe = 0;
  reg [{ab - 1}:0] wr_addr = 0;
  reg [{ww - 1}:0] wr_data = 0;
  reg [{iw - 1}:0] in_data = 0;
  wire in_ready, out_valid;
  wire [{s.pe * s.acc_bits - 1}:0] out_data;
  integer seen = 0;
  {dut or s.name} dut (.clk(clk), .rst(rst), .wr_en(wr_en), .wr_pe(wr_pe), .wr_addr(wr_addr),
    .wr_data(wr_data), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
    .out_valid(out_valid), .out_data(out_data));
  always #5 clk = ~clk;
  always @(posedge clk) if (out_valid) begin
    $display("OUT {fmt}", {args});
    seen = seen + 1;
  end
  initial begin
    `TICK `TICK
    wr_en = 1;
{wlines}
    wr_en = 0; rst = 0;
{blines}
    in_valid = 0;
    repeat ({4 * s.nf * s.sf + 10}) begin `TICK end
    if (seen != {expected_beats}) $display("ERROR beats %0d != {expected_beats}", seen);
    $display("DONE");
    $finish;
  end
endmodule
"""


def parse_outputs(spec: EngineSpec, text: str) -> np.ndarray:
    """Simulator output lines → N×MH array in output-row order."""
    rows = [[int(v) for v in line.split()[1:]] for line in text.splitlines() if line.startswith("OUT ")]
    if "DONE" not in text or "ERROR" in text:
        raise EdgeqError(f"simulation of {spec.name} did not finish cleanly:\n{text[-2000:]}", exit_code=5)
    beats = np.array(rows, dtype=np.int64).reshape(-1, spec.nf, spec.pe)
    return beats.reshape(len(beats), spec.mh)


def write(spec: EngineSpec, directory: str | Path) -> Path:
    """Writes the engine's Verilog to `directory`/<name>.v and returns the path."""
    path = Path(directory) / f"{spec.name}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog(spec))
    return path
