"""ARM mat-vec cost, deterministically: executed instructions per weight of every edgeq aarch64 kernel
(NEON and dotprod tiers) vs ggml TQ2_0, TQ1_0 and Q4_0, all cross-compiled by the same aarch64 gcc with
-mcpu=cortex-a76 and run under `qemu-aarch64 -cpu cortex-a76` with qemu's instruction-count plugin.

Each contender is the same driver as bench_kernels.py (benchmarks/drivers: edgeq_run on a one-layer
blob including its input-quantize op; ggml_mul_mat on an f32 vector, quantized inside the op), fed
"1" and then "3" calls on stdin: (count(3) - count(1)) / 2 is one call with all set-up cancelled.
Counts are emulated (exact for this binary); the Pi 5 milliseconds are modelled from them with the
rpi5 roofline (targets/rpi5.toml: IPC x clock for compute, STREAM read bandwidth for the weights).

GEMM section (batches of 8 and 32 activation rows): edgeq's dotprod GEMM vs its i8mm (SMMLA) GEMM vs
ggml TQ2_0, TQ1_0, Q4_0 and Q8_0 with N rows (Q4_0/Q8_0 take ggml's 2x2 SMMLA vec_dot when built with
i8mm). Both sides are built with the android-arm64 target's flags (-march=armv8.2-a+dotprod+i8mm+fp16)
and run under `qemu-aarch64 -cpu max`, the core that has SMMLA; the figure is executed instructions per
weight per activation row, and the milliseconds are modelled with the android-arm64 roofline.

    .venv/bin/python benchmarks/bench_arm.py [--sections matvec,gemm] [--shapes 2560x6912,...]
                                             [--gemm-shapes 4096x4096,2560x6912] [--batches 8,32] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as BK  # sibling script: ggml source, drivers

ROOT = BK.ROOT
CPU = "cortex-a76"
CC, CXX = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++"
ARM_FLAGS = ["-O3", "-mcpu=cortex-a76"]
SHAPES = [(2560, 6912), (6912, 2560), (4096, 4096), (256, 1024)]  # (M out, K in); the last: a small layer
EDGEQ_TIERS = {"neon": 4, "neon_dotprod": 5}  # EDGEQ_TIER_* (edgeq.h)
# edgeq contenders: name -> (format, T2/T158 scale granularity for the packer, lookup-table kernel hint)
EDGEQ = {"t2 row": ("t2", "tensor", False), "t2 block": ("t2", "block", False), "t158 row": ("t158", "tensor", False),
         "t158 block": ("t158", "block", False), "q4 g32": ("q4", None, False), "i8": ("i8", None, False),
         "b1": ("b1", None, False),
         # the lookup-table kernel (docs/kernels-arm.md): weights repacked at load, tables built in every call
         "t2 row lut": ("t2", "tensor", True), "t2 block lut": ("t2", "block", True),
         "t158 row lut": ("t158", "tensor", True), "t158 block lut": ("t158", "block", True)}
# The same weights stored in LAYOUT_ROWS4 (what `edgeq pack --target rpi5` writes): the dotprod tier's rows4
# kernels read them in place (the NEON tier would repack them to row-major at load: the rows above).
ROWS4 = {"t2 row rows4": ("t2", "tensor"), "t2 block rows4": ("t2", "block"), "q4 g32 rows4": ("q4", None)}
GGML = ["tq2_0", "tq1_0", "q4_0"]
PEER = {"t2": "tq2_0", "t158": "tq1_0", "q4": "q4_0"}
GOALS = {"tq2_0": 0.6, "q4_0": 0.9}  # issue 8: edgeq / ggml executed instructions per weight
GEMM_CPU, GEMM_TARGET = "max", "android-arm64"
GEMM_SHAPES = [(4096, 4096), (2560, 6912)]  # the second: BitNet b1.58 2B's FFN down projection
GEMM_BATCHES = [8, 32]
GEMM_TIERS = {"neon_dotprod": 5, "neon_i8mm": 6}
GEMM_EDGEQ = {k: EDGEQ[k] for k in ("t2 row", "t2 block", "t158 block", "q4 g32", "i8", "b1")}
GEMM_GGML = ["tq2_0", "tq1_0", "q4_0", "q8_0"]
GEMM_PEER = {**PEER, "i8": "q8_0"}
GGML_BPW = {**BK.GGML_TYPES, "q8_0": 34 / 32}  # bytes per weight


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def gemm_flags() -> list[str]:
    """The android-arm64 target's compiler flags (edgeq's Makefile adds -ffp-contract=off to its own)."""
    from edgeq.targets.registry import get_target

    return [f for f in get_target(GEMM_TARGET).build["cflags"] if not f.startswith("-ffp-contract")]


def build_ggml_arm(arm_flags: list[str] = ARM_FLAGS) -> Path:
    """ggml cross-built for aarch64 with arm_flags (no native detection), once per flag set, into the cache."""
    g = BK.ggml_source()
    tag = "a76" if arm_flags == ARM_FLAGS else hashlib.sha256(" ".join(arm_flags).encode()).hexdigest()[:8]
    out = BK.CACHE / f"ggml-build-{BK.LLAMA_VER}-aarch64-{tag}"
    if not (out / "src" / "libggml-cpu.a").is_file():
        log(f"cross-building ggml for aarch64 with {' '.join(arm_flags)} (once) ...")
        flags = " ".join(arm_flags[1:])
        BK.run(["cmake", "-S", str(g), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_SYSTEM_NAME=Linux",
                "-DCMAKE_SYSTEM_PROCESSOR=aarch64", f"-DCMAKE_C_COMPILER={CC}", f"-DCMAKE_CXX_COMPILER={CXX}",
                f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_CXX_FLAGS={flags}", "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF",
                "-DBUILD_SHARED_LIBS=OFF", "-DGGML_BUILD_TESTS=OFF", "-DGGML_BUILD_EXAMPLES=OFF"])
        BK.run(["cmake", "--build", str(out), f"-j{os.cpu_count() or 1}"])
    return out


def build_drivers(ggml_build: Path, arm_flags: list[str] = ARM_FLAGS) -> dict[str, Path]:
    """Static aarch64 drivers: edgeq (this tree's runtimes/, same flags) and ggml."""
    h = hashlib.sha256()
    for p in sorted([*(ROOT / "runtimes").rglob("*.[ch]"), ROOT / "runtimes" / "Makefile", *BK.DRIVERS.glob("*")]):
        h.update(p.read_bytes())
    h.update(" ".join(arm_flags).encode())
    out = BK.CACHE / f"arm-{h.hexdigest()[:12]}"
    bins = {"edgeq": out / "edgeq_driver", "ggml": out / "ggml_driver"}
    if all(p.is_file() for p in bins.values()):
        return bins
    out.mkdir(parents=True, exist_ok=True)
    BK.run(["make", "-s", "-C", str(ROOT / "runtimes"), f"BUILD={out / 'rt'}", f"CC={CC}", "ARCH=aarch64",
            f"TARGET_CFLAGS={' '.join(arm_flags)}", "TARGET_LDFLAGS=-static", f"-j{os.cpu_count() or 1}",
            str(out / "rt" / "libedgeq.a")])
    common = [CC, *arm_flags, "-std=c11", "-static"]
    BK.run([*common, f"-I{ROOT / 'runtimes' / 'include'}", str(BK.DRIVERS / "edgeq_driver.c"),
            str(out / "rt" / "libedgeq.a"), "-lm", "-lpthread", "-o", str(bins["edgeq"])])
    src = ggml_build / "src"
    BK.run([*common, f"-I{BK.ggml_source() / 'include'}", str(BK.DRIVERS / "ggml_driver.c"), str(src / "libggml.a"),
            str(src / "libggml-cpu.a"), str(src / "libggml-base.a"), "-lm", "-lpthread", "-lstdc++",
            "-o", str(bins["ggml"])])
    return bins


def make_blob(M: int, K: int, fmt: str, per: str | None, lut: bool, tmp: Path, target: str = "") -> Path:
    """One Linear(K, M) packed in `fmt` (for `target`: rpi5 stores T2/Q4 as ROWS4); T2/T158 with per-tensor
    (row) or per-256-block scales; `lut`: the op carries the lookup-table kernel hint (what a target's
    [kernels] rule writes)."""
    import edgeq.packer
    from edgeq.quant import weights as W

    path = tmp / f"{M}x{K}_{fmt}_{per}_{'lut' if lut else 'dot'}_{target or 'any'}.eqb"
    if per is None:
        return _pack(M, K, fmt, path, lut, target)
    with mock.patch.object(edgeq.packer, "quantize_weight", lambda w, f, group=None: W.ternary_absmean(w, per, f)):
        return _pack(M, K, fmt, path, lut, target)


def _pack(M: int, K: int, fmt: str, path: Path, lut: bool = False, target: str = "") -> Path:
    import numpy as np
    import torch
    from torch import nn

    import edgeq.blob
    import edgeq.packer
    from edgeq.blob import layout as L
    from edgeq.importers.torch_export import from_module

    torch.manual_seed(0)
    fg = from_module(nn.Sequential(nn.Linear(K, M)), torch.zeros(1, K))
    calib = np.random.default_rng(0).standard_normal((8, K)).astype(np.float32)
    g = edgeq.packer.pack(fg, calib, edgeq.packer.Recipe(fmt), target=target)
    for op in g.ops:
        if lut and op.op == L.OP_LINEAR:
            op.flags |= L.OPF_LUT
    edgeq.blob.write_blob(g, path)
    return path


def lut_weight_bytes(M: int, K: int, per: str) -> int:
    """Bytes the lookup-table kernel streams per call: its repacked weights (neon_lut.c: 16 bytes per 8 rows x
    6 weights, 43 pairs per 256-block; fp32 scales per 8 rows and block with block scales)."""
    tiles, blocks = -(-M // 8), -(-K // 256)
    return tiles * blocks * (43 * 16 + (8 * 4 if per == "block" else 0))


def count(cmd: list[str], calls: int, cpu: str = CPU) -> tuple[int, str]:
    """Executed instructions of a driver process answering `calls` calls (and its ready label)."""
    from edgeq.runner.deploy import insn_plugin

    plugin = insn_plugin()
    res = subprocess.run(["qemu-aarch64", "-cpu", cpu, "-plugin", str(plugin), "-d", "plugin", *cmd],
                         input=f"{calls}\nq\n", capture_output=True, text=True, timeout=3600, check=False)
    found = re.findall(r"total insns: (\d+)", res.stderr)
    if res.returncode != 0 or not found or "error" in res.stdout:
        raise RuntimeError(f"{cmd}: exit {res.returncode}: {res.stderr[-500:]} {res.stdout[-200:]}")
    label = res.stdout.splitlines()[0].removeprefix("ready").strip()
    return int(found[-1]), label


def per_call(cmd: list[str], cpu: str = CPU) -> tuple[float, str]:
    one, label = count(cmd, 1, cpu)
    three, _ = count(cmd, 3, cpu)
    return (three - one) / 2, label


def modelled_ms(insns: float, weight_bytes: float, threads: int) -> dict:
    """Pi 5 roofline: max(instructions / (IPC x clock x threads), weight bytes / read bandwidth)."""
    from edgeq.targets import latency
    from edgeq.targets.registry import get_target

    t = get_target("rpi5")
    compute = latency.from_instructions(t, int(insns), threads)
    memory = weight_bytes / (t.read_gbps(min(threads, len(t.memory["read_gbps"]))) * 1e9)
    return {"ms": max(compute, memory) * 1e3, "bound": "compute" if compute >= memory else "memory",
            "threads": threads, "source": "modelled"}


def bench_shape(M: int, K: int, bins: dict[str, Path], tmp: Path) -> list[dict]:
    rows = []
    contenders = [(name, fmt, per, lut, "", EDGEQ_TIERS) for name, (fmt, per, lut) in EDGEQ.items()]
    contenders += [(name, fmt, per, False, "rpi5", {"neon_dotprod": EDGEQ_TIERS["neon_dotprod"]})
                   for name, (fmt, per) in ROWS4.items()]
    for name, fmt, per, lut, target, tiers in contenders:
        blob = make_blob(M, K, fmt, per, lut, tmp, target)
        wbytes = lut_weight_bytes(M, K, per) if lut else blob.stat().st_size
        for tier, tier_id in tiers.items():
            insns, label = per_call([str(bins["edgeq"]), str(blob), "1", "1", str(tier_id)])
            kernel = label.split(",")[-1]
            if not kernel.startswith(tier + "/") or lut != ("_lut_" in kernel) or bool(target) != ("_rows4_" in kernel):
                raise RuntimeError(f"edgeq {name} {tier}: the runtime ran {label}, not the {tier} tier's "
                                   f"{'lookup-table' if lut else 'rows4' if target else 'dot'} kernel")
            rows.append({"who": "edgeq", "name": f"{tier} {name}", "fmt": fmt, "kernel": label, "insns": insns,
                         "weight_bytes": wbytes})
    for t in GGML:
        insns, _ = per_call([str(bins["ggml"]), t, str(K), str(M), "1", "1"])
        rows.append({"who": "ggml", "name": f"ggml {t}", "fmt": t, "kernel": f"ggml/{t}", "insns": insns,
                     "weight_bytes": BK.GGML_TYPES[t] * M * K})
    for r in rows:
        r.update(M=M, K=K, insn_per_weight=r["insns"] / (M * K), source="emulated",
                 pi5=[modelled_ms(r["insns"], r["weight_bytes"], n) for n in (1, 4)])
        log(f"{M}x{K} {r['name']:<28} {r['insn_per_weight']:.4f} insn/weight  ({r['kernel']})")
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """edgeq / ggml instructions per weight for the peer format, per shape and kernel."""
    out = []
    for r in rows:
        peer = PEER.get(r["fmt"])
        if r["who"] != "edgeq" or peer is None:
            continue
        g = next(x for x in rows if x["name"] == f"ggml {peer}" and x["M"] == r["M"] and x["K"] == r["K"])
        out.append({"shape": f"{r['M']}x{r['K']}", "edgeq": r["name"], "ggml": peer,
                    "ratio": r["insn_per_weight"] / g["insn_per_weight"],
                    "goal": GOALS.get(peer) if r["name"].startswith("neon_dotprod") else None})  # a76 has SDOT
    return out


def print_table(rows: list[dict], rat: list[dict]) -> None:
    print(f"{'shape':>11} {'contender':<28} {'insn/weight':>11} {'Pi5 ms 1T':>10} {'Pi5 ms 4T':>10}  kernel")
    print(f"{'':>11} {'':<28} {'(emulated)':>11} {'(modelled)':>10} {'(modelled)':>10}")
    for r in rows:
        print(f"{r['M']:>5}x{r['K']:<5} {r['name']:<28} {r['insn_per_weight']:>11.4f} {r['pi5'][0]['ms']:>10.3f} "
              f"{r['pi5'][1]['ms']:>10.3f}  {r['kernel']}")
    print("\nedgeq / ggml executed instructions per weight (goal for the dotprod tier: <= 0.6x TQ2_0 ternary, "
          "<= 0.9x Q4_0)")
    for x in rat:
        goal = "" if x["goal"] is None else ("  meets goal" if x["ratio"] <= x["goal"] else f"  misses goal {x['goal']}")
        print(f"{x['shape']:>11} {x['edgeq']:<28} vs {x['ggml']:<6} {x['ratio']:.3f}x{goal}")


def gemm_modelled_ms(insns: float, weight_bytes: float) -> dict:
    """android-arm64 roofline (one prime core): max(instructions / (IPC x clock), weight bytes / read bandwidth)."""
    from edgeq.targets import latency
    from edgeq.targets.registry import get_target

    t = get_target(GEMM_TARGET)
    compute = latency.from_instructions(t, int(insns), 1)
    memory = weight_bytes / (t.read_gbps(1) * 1e9)
    return {"ms": max(compute, memory) * 1e3, "bound": "compute" if compute >= memory else "memory",
            "target": GEMM_TARGET, "source": "modelled"}


def bench_gemm_shape(M: int, K: int, batches: list[int], bins: dict[str, Path], tmp: Path) -> list[dict]:
    """Per batch: every edgeq format on the dotprod and the i8mm tier (forced), then ggml, under -cpu max."""
    rows = []
    blobs = {name: make_blob(M, K, fmt, per, False, tmp) for name, (fmt, per, _) in GEMM_EDGEQ.items()}
    tiled = {name: make_blob(M, K, fmt, per, False, tmp, "rpi5") for name, (fmt, per) in ROWS4.items()}
    for n in batches:
        for name, (fmt, _) in ROWS4.items():  # rows4 weights: the dotprod tier's rows4 GEMM (i8mm would repack)
            insns, label = per_call([str(bins["edgeq"]), str(tiled[name]), "1", str(n),
                                     str(GEMM_TIERS["neon_dotprod"])], GEMM_CPU)
            kernel = label.split(",")[-1]
            if not (kernel.startswith("neon_dotprod/") and "_rows4_" in kernel and kernel.endswith("_gemm")):
                raise RuntimeError(f"edgeq {name} batch {n}: the runtime ran {label}, not the rows4 GEMM")
            rows.append({"who": "edgeq", "name": f"neon_dotprod {name}", "fmt": fmt, "kernel": label, "insns": insns,
                         "weight_bytes": tiled[name].stat().st_size, "N": n})
        for name, (fmt, _, _) in GEMM_EDGEQ.items():
            for tier, tier_id in GEMM_TIERS.items():
                insns, label = per_call([str(bins["edgeq"]), str(blobs[name]), "1", str(n), str(tier_id)], GEMM_CPU)
                kernel = label.split(",")[-1]
                if not (kernel.startswith(tier + "/") and kernel.endswith("_gemm")):
                    raise RuntimeError(f"edgeq {name} {tier} batch {n}: the runtime ran {label}, not the {tier} GEMM")
                rows.append({"who": "edgeq", "name": f"{tier} {name}", "fmt": fmt, "kernel": label, "insns": insns,
                             "weight_bytes": blobs[name].stat().st_size, "N": n})
        for t in GEMM_GGML:
            insns, _ = per_call([str(bins["ggml"]), t, str(K), str(M), "1", str(n)], GEMM_CPU)
            rows.append({"who": "ggml", "name": f"ggml {t}", "fmt": t, "kernel": f"ggml/{t}", "insns": insns,
                         "weight_bytes": GGML_BPW[t] * M * K, "N": n})
    for r in rows:
        r.update(M=M, K=K, insn_per_weight_row=r["insns"] / (M * K * r["N"]), source="emulated",
                 modelled=gemm_modelled_ms(r["insns"], r["weight_bytes"]))
        log(f"{M}x{K} N={r['N']:<3} {r['name']:<26} {r['insn_per_weight_row']:.4f} insn/weight/row  ({r['kernel']})")
    return rows


def gemm_ratios(rows: list[dict]) -> list[dict]:
    """The i8mm GEMM's executed instructions per weight per row over the dotprod GEMM's and the ggml peer's."""
    def find(name: str, r: dict) -> dict | None:
        return next((x for x in rows if x["name"] == name and (x["M"], x["K"], x["N"]) == (r["M"], r["K"], r["N"])),
                    None)

    out = []
    for r in rows:
        if not r["name"].startswith("neon_i8mm "):
            continue
        sdot = find(r["name"].replace("neon_i8mm", "neon_dotprod", 1), r)
        peer = GEMM_PEER.get(r["fmt"])
        g = find(f"ggml {peer}", r) if peer else None
        out.append({"shape": f"{r['M']}x{r['K']}", "N": r["N"], "edgeq": r["name"],
                    "vs_dotprod": r["insn_per_weight_row"] / sdot["insn_per_weight_row"],
                    "ggml": peer, "vs_ggml": g and r["insn_per_weight_row"] / g["insn_per_weight_row"]})
    return out


def print_gemm_table(rows: list[dict], rat: list[dict]) -> None:
    print(f"\nGEMM under qemu-aarch64 -cpu {GEMM_CPU} ({' '.join(gemm_flags())})")
    print(f"{'shape':>11} {'N':>3} {'contender':<26} {'insn/w/row':>10} {GEMM_TARGET + ' ms':>18}  kernel")
    print(f"{'':>11} {'':>3} {'':<26} {'(emulated)':>10} {'(modelled)':>18}")
    for r in rows:
        print(f"{r['M']:>5}x{r['K']:<5} {r['N']:>3} {r['name']:<26} {r['insn_per_weight_row']:>10.4f} "
              f"{r['modelled']['ms']:>18.3f}  {r['kernel']}")
    print("\ni8mm GEMM / dotprod GEMM and / ggml peer GEMM, executed instructions per weight per row")
    for x in rat:
        vs_ggml = "" if x["vs_ggml"] is None else f"  vs ggml {x['ggml']:<6} {x['vs_ggml']:.3f}x"
        print(f"{x['shape']:>11} {x['N']:>3} {x['edgeq']:<26} vs dotprod {x['vs_dotprod']:.3f}x{vs_ggml}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=",".join(f"{m}x{k}" for m, k in SHAPES), help="MxK,... (M out, K in)")
    ap.add_argument("--sections", default="matvec,gemm", help="matvec, gemm or both")
    ap.add_argument("--gemm-shapes", default=",".join(f"{m}x{k}" for m, k in GEMM_SHAPES), help="MxK,... for GEMM")
    ap.add_argument("--batches", default=",".join(map(str, GEMM_BATCHES)), help="GEMM activation rows, e.g. 8,32")
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args(argv)
    sections = set(a.sections.split(","))
    from edgeq.runner.deploy import insn_plugin

    if insn_plugin() is None:
        log("qemu insn plugin missing: run tools/build_qemu_plugin.sh")
        return 2
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    rows, rat, gemm = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        if "matvec" in sections:
            bins = build_drivers(build_ggml_arm())
            for M, K in shapes:
                rows += bench_shape(M, K, bins, Path(tmp))
            rat = ratios(rows)
            print_table(rows, rat)
        if "gemm" in sections:
            flags = gemm_flags()
            bins = build_drivers(build_ggml_arm(flags), flags)
            batches = [int(v) for v in a.batches.split(",")]
            grows = []
            for s in a.gemm_shapes.split(","):
                M, K = (int(v) for v in s.split("x"))
                grows += bench_gemm_shape(M, K, batches, bins, Path(tmp))
            gemm = {"cpu": GEMM_CPU, "cflags": flags, "target": GEMM_TARGET, "rows": grows, "ratios": gemm_ratios(grows)}
            print_gemm_table(grows, gemm["ratios"])
    if a.json:
        cc = subprocess.run([CC, "--version"], check=False, capture_output=True, text=True).stdout.splitlines()[0]
        result = {"cpu": CPU, "cflags": ARM_FLAGS, "compiler": cc,
                  "method": "qemu-aarch64 insn plugin, (count of 3 calls - count of 1 call) / 2",
                  "rows": rows, "ratios": rat, "gemm": gemm}
        tmp_json = a.json.with_suffix(".tmp")
        tmp_json.write_text(json.dumps(result, indent=1))
        tmp_json.replace(a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
