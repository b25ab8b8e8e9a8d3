"""Roofline latency model per target. Every figure it produces is *modelled*, never measured.

Per layer:  time = max(compute, memory) + op overhead
            compute = MACs x instructions_per_weight(kernel) / (IPC x clock x threads)
            memory  = (weight bytes + activation bytes) / read bandwidth(threads)
IPC, clock, bandwidth and overhead come from the board file; instructions per weight per kernel
from KERNEL_COSTS below, each with its status and source. docs/latency-model.md states the model
and its error against published figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.graph import Graph
from edgeq.targets import mcu, neon
from edgeq.targets.registry import LAYOUTS, LINUX_FAMILIES, Target

SOURCE = "modelled"
WEIGHT_OPS = (L.OP_LINEAR, L.OP_CONV2D, L.OP_DWCONV2D, L.OP_LINEAR_DYN)


@dataclass(frozen=True)
class KernelCost:
    """Executed instructions per weight of one mat-vec kernel (everything a call does, set-up excluded)."""

    insn_per_weight: float
    status: str  # emulated | peer-measured | placeholder | estimate
    source: str


GGML_A76 = "DESIGN §6: qemu-aarch64 -cpu cortex-a76 insn plugin, gcc 12 -O2 -mcpu=cortex-a76, 1024x4096 mat-vec"
EDGEQ_A76 = ("emulated: benchmarks/bench_arm.py (results/bench_arm-e93f9ee.json), qemu-aarch64 -cpu cortex-a76 insn "
             "plugin, gcc 12 -O3 -mcpu=cortex-a76, 4096x4096 edgeq_run incl. the quantize op")
EDGEQ_A76_ROWS4 = EDGEQ_A76.replace("bench_arm-e93f9ee.json", "bench_arm-190a8e9.json")
EDGEQ_LUT_A76 = ("emulated: benchmarks/bench_arm.py (results/bench_arm-cfac256.json), as above, row scales, "
                 "table build included")
LUT_BITS_PER_WEIGHT = 43 * 16 * 8 / (8 * 256)  # neon_lut.c: 16 bytes per 8 rows x 6 weights, 43 pairs per block
KERNEL_COSTS: dict[str, KernelCost] = {
    # Peers, measured (the only measured figures so far).
    "ggml/tq2_0": KernelCost(0.34, "peer-measured", GGML_A76),
    "ggml/tq1_0": KernelCost(0.52, "peer-measured", GGML_A76),
    "ggml/q4_0": KernelCost(0.68, "peer-measured", GGML_A76),
    # edgeq NEON dotprod tier, counted under qemu (T2/T158: the packer's default per-tensor scale).
    "neon_dotprod/t2_matvec": KernelCost(0.173, "emulated", EDGEQ_A76),
    "neon_dotprod/t158_matvec": KernelCost(0.407, "emulated", EDGEQ_A76),
    "neon_dotprod/q4_matvec": KernelCost(0.431, "emulated", EDGEQ_A76 + ", group 32"),
    "neon_dotprod/i8_matvec": KernelCost(0.15, "estimate", "estimate: one LD1 + one SDOT per 16 weights + loop "
                                                           "(bench_arm.py counts 0.196 with the quantize op)"),
    "neon_dotprod/b1_matvec": KernelCost(0.254, "emulated", EDGEQ_A76),
    # The same tier on rows4 weights (what the packer writes for rpi5), counted the same way.
    "neon_dotprod/t2_rows4_matvec": KernelCost(0.147, "emulated", EDGEQ_A76_ROWS4),
    "neon_dotprod/q4_rows4_matvec": KernelCost(0.212, "emulated", EDGEQ_A76_ROWS4 + ", group 32"),
    "neon_dotprod/b1_xnor_matvec": KernelCost(0.05, "estimate", "estimate: EOR + CNT + ADALP per 128 weights"),
    # Armv8.0 NEON tier (no SDOT): widening multiply-accumulate, counted the same way.
    **{f"neon/{f}_matvec": KernelCost(c, "emulated", EDGEQ_A76)
       for f, c in {"t2": 0.374, "t158": 0.587, "q4": 0.556, "i8": 0.383, "b1": 0.391}.items()},
    "neon/b1_xnor_matvec": KernelCost(0.05, "estimate", "estimate: EOR + CNT + ADALP per 128 weights"),
    # Lookup-table ternary mat-vec (both tiers run the same code; ops whose blob hint asks for it).
    **{f"{tier}/{f}_lut_matvec": KernelCost(0.148, "emulated", EDGEQ_LUT_A76)
       for tier in ("neon", "neon_dotprod") for f in ("t2", "t158")},
    # x86 AVX2 tier: placeholders until `edgeq bench` (C runtime issue) measures them.
    **{f"avx2/{f}_matvec": KernelCost(c, "placeholder", "placeholder: half the NEON dotprod figure (256-bit vs "
                                                          "128-bit vectors) until edgeq bench measures it")
       for f, c in {"t2": 0.17, "t158": 0.26, "q4": 0.34, "i8": 0.08, "b1": 0.18}.items()},
    "avx2/b1_xnor_matvec": KernelCost(0.03, "placeholder", "placeholder: VPXOR + popcount per 256 weights"),
    # Cortex-M: DSP extension (SMLAD = 2 MACs) and Helium (MVE, 16 int8 lanes per VMLADAV).
    **{f"cortex_m_dsp/{f}_matvec": KernelCost(c, "estimate", "estimate: SXTB16 unpack + SMLAD (2 MACs/insn)")
       for f, c in {"t2": 1.5, "t158": 2.5, "q4": 1.5, "i8": 0.8, "b1": 1.0}.items()},
    "cortex_m_dsp/b1_xnor_matvec": KernelCost(0.2, "estimate", "estimate: EOR + table popcount per 32 weights"),
    **{f"helium/{f}_matvec": KernelCost(c, "estimate", "estimate: VLDRB + VMLADAV on 16 int8 lanes")
       for f, c in {"t2": 0.4, "t158": 0.7, "q4": 0.4, "i8": 0.15, "b1": 0.3}.items()},
    "helium/b1_xnor_matvec": KernelCost(0.05, "estimate", "estimate: VEOR + VCNT per 128 weights"),
}
REF_COST = KernelCost(4.0, "estimate", "estimate: plain C reference kernel, unpack + multiply-add per weight")


def kernel_cost(kernel: str) -> KernelCost:
    """Instructions per weight of a named kernel; the reference tier's estimate for unknown names."""
    return KERNEL_COSTS.get(kernel, REF_COST)


def kernels_for(target: Target) -> dict[str, str]:
    """Format -> the mat-vec kernel the runtime chooses on this target (plus "b1_xnor" for binary activations)."""
    if target.family in LINUX_FAMILIES:
        chosen = neon.kernel_choice(target)[2]
        out = {**{f: k["matvec"] for f, k in chosen.items()}, "b1_xnor": chosen["b1"]["xnor"]}
        if LAYOUTS[target.layout] == F.LAYOUT_ROWS4:  # the packer stores T2/Q4 for the dotprod rows4 kernels
            for f in ("t2", "q4"):
                if out[f] == f"neon_dotprod/{f}_matvec":
                    out[f] = f"neon_dotprod/{f}_rows4_matvec"
        return out
    if target.family == "mcu":
        return {**mcu.config(target)["kernels"], "b1_xnor": "ref/b1_xnor_matvec"}  # no Cortex-M XNOR kernel yet
    raise EdgeqError(f"target {target.id} is family {target.family}: no CPU latency model (see `edgeq fpga`)")


@dataclass(frozen=True)
class Layer:
    """One weight layer: `rows x cols` weights applied to `n` vectors, stored at `bits_per_weight`."""

    name: str
    rows: int
    cols: int
    kernel: str
    bits_per_weight: float
    n: int = 1
    act_bytes: int = 0

    @property
    def macs(self) -> int:
        return self.rows * self.cols * self.n


@dataclass
class LayerTime:
    name: str
    kernel: str
    kernel_status: str
    macs: int
    bytes: int
    compute_s: float
    memory_s: float
    overhead_s: float
    time_s: float
    bound: str
    source: str = SOURCE


@dataclass
class Estimate:
    """A modelled latency: per layer and in total, with the constants it used."""

    target: str
    threads: int
    layers: list[LayerTime]
    other_s: float
    assumptions: dict = field(default_factory=dict)
    source: str = SOURCE

    @property
    def total_s(self) -> float:
        return sum(x.time_s for x in self.layers) + self.other_s

    def to_json(self) -> dict:
        return {"target": self.target, "threads": self.threads, "source": SOURCE, "total_s": self.total_s,
                "other_ops_s": self.other_s, "layers": [asdict(x) for x in self.layers],
                "assumptions": self.assumptions}


def _threads(target: Target, threads: int | None) -> int:
    t = target.threads if threads is None else threads
    if t < 1:
        raise EdgeqError(f"threads must be >= 1, got {t}")
    return min(t, target.cpu["cores"])


def assumptions(target: Target, threads: int) -> dict:
    cpu, lat = target.cpu, target.section("latency")
    return {"freq_mhz": cpu["freq_mhz"], "ipc": lat["ipc"], "threads": threads,
            "read_gbps": target.read_gbps(threads), "op_overhead_us": lat["op_overhead_us"],
            "sources": {"cpu": cpu["source"], "memory": target.memory["source"], "latency": lat["source"]}}


def layer_time(target: Target, layer: Layer, threads: int) -> LayerTime:
    """Roofline time of one layer on `threads` cores."""
    lat = target.section("latency")
    cost = kernel_cost(layer.kernel)
    compute = layer.macs * cost.insn_per_weight / (lat["ipc"] * target.cpu["freq_mhz"] * 1e6 * threads)
    nbytes = int(layer.rows * layer.cols * layer.bits_per_weight / 8) + layer.act_bytes
    memory = nbytes / (target.read_gbps(threads) * 1e9)
    overhead = lat["op_overhead_us"] * 1e-6
    return LayerTime(layer.name, layer.kernel, cost.status, layer.macs, nbytes, compute, memory, overhead,
                     max(compute, memory) + overhead, "compute" if compute >= memory else "memory")


def predict(target: Target, layers: list[Layer], threads: int | None = None, other_ops: int = 0,
            other_bytes: int = 0) -> Estimate:
    """Modelled latency of weight layers plus `other_ops` cheap ops moving `other_bytes`."""
    threads = _threads(target, threads)
    lat = target.section("latency")
    other = other_ops * lat["op_overhead_us"] * 1e-6 + other_bytes / (target.read_gbps(threads) * 1e9)
    return Estimate(target.id, threads, [layer_time(target, x, threads) for x in layers], other,
                    assumptions(target, threads))


def graph_layers(target: Target, graph: Graph) -> tuple[list[Layer], int, int]:
    """(weight layers, count of other ops, bytes those ops move) of a quantized graph."""
    kernels = kernels_for(target)
    names = {f.id: f.name for f in FORMATS.values()}
    layers, other_ops, other_bytes = [], 0, 0
    for k, op in enumerate(graph.ops):
        x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        act = mcu.activation_bytes(x) + mcu.activation_bytes(y)
        if op.op not in WEIGHT_OPS:
            other_ops += 1
            other_bytes += act
            continue
        w = graph.tensors[op.inputs[1]]
        fmt = names[w.format]
        kernel = kernels["b1_xnor"] if fmt == "b1" and x.format == F.FMT_B1 else kernels[fmt]
        rows, cols = w.shape
        n = 1
        for s in y.shape[:-1]:
            n *= s
        bits = (w.packed.codes.nbytes + w.packed.scales.nbytes) * 8 / (rows * cols)
        lut = f"{kernel.split('/')[0]}/{fmt}_lut_matvec"
        if op.flags & L.OPF_LUT and n == 1 and lut in KERNEL_COSTS:  # the runtime repacks at load and runs it
            kernel = lut
            bits = LUT_BITS_PER_WEIGHT + (32 / w.packed.block if w.packed.scale_kind == F.SCALE_BLOCK else 0)
        layers.append(Layer(f"{k}_{op.name}", rows, cols, kernel, bits, n, act))
    return layers, other_ops, other_bytes


def predict_graph(target: Target, graph: Graph, threads: int | None = None) -> Estimate:
    layers, other_ops, other_bytes = graph_layers(target, graph)
    return predict(target, layers, threads, other_ops, other_bytes)


def predict_blob(target: Target, path: str | Path, threads: int | None = None) -> Estimate:
    """Modelled latency of one inference of a blob on a target."""
    return predict_graph(target, read_blob(path).graph, threads)


def from_instructions(target: Target, instructions: int, threads: int = 1) -> float:
    """Modelled seconds on the real board for an instruction count measured under emulation (qemu -icount
    or the insn plugin): instructions / (IPC x clock x threads)."""
    threads = _threads(target, threads)
    return instructions / (target.section("latency")["ipc"] * target.cpu["freq_mhz"] * 1e6 * threads)


def decoder_layers(hidden: int, intermediate: int, n_layers: int, vocab: int, kernel: str, bits_per_weight: float,
                   head_kernel: str, head_bits_per_weight: float) -> list[Layer]:
    """Mat-vec layers of one decode step of a LLaMA-style decoder (q, k, v, o, gate, up, down; lm_head).

    Attention over the KV cache is left out: at short contexts it is small next to the weights.
    """
    block = [("q", hidden, hidden), ("k", hidden, hidden), ("v", hidden, hidden), ("o", hidden, hidden),
             ("gate", intermediate, hidden), ("up", intermediate, hidden), ("down", hidden, intermediate)]
    layers = [Layer(f"{i}.{name}", rows, cols, kernel, bits_per_weight)
              for i in range(n_layers) for name, rows, cols in block]
    return layers + [Layer("lm_head", vocab, hidden, head_kernel, head_bits_per_weight)]
