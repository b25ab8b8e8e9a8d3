"""Mat-vec and small-batch GEMM, side by side, in one run: edgeq (T2/T158/Q4/I8/B1) vs ggml (TQ2_0/TQ1_0/Q4_0),
onnxruntime MatMulNBits (int4, block 32, accuracy_level=4), torch fp32 / dynamic-int8 Linear, and
the machine's streaming-read roof.

Every contender times the same work: y = W x for one f32 vector, activation quantization included
(edgeq's graph quantize op; ggml quantizes inside ggml_mul_mat; ORT/torch inside their op). The C
contenders run in small driver processes (benchmarks/drivers) that take "N" on stdin and answer N
times; repetitions of all contenders are interleaved round by round; the p50 is reported.
Every shape runs at batch 1 with 1 and 2 threads (--threads), and 4096x4096 also with batches of
8 and 32 rows (--batches); the same thread count for every contender of a run. Builds are cached
under ~/.cache/edgeq/bench.

    .venv/bin/python benchmarks/bench_kernels.py [--shapes 4096x4096,...] [--threads 1,2] [--batches 8,32]
                                                 [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = Path(__file__).resolve().parent / "drivers"
CACHE = Path(os.environ.get("EDGEQ_BENCH_CACHE", Path.home() / ".cache" / "edgeq" / "bench"))
LLAMA_VER = "0.3.36"
SHAPES = [(4096, 4096), (16384, 8192), (6912, 2560), (2560, 6912)]  # (M out, K in)
BATCH_SHAPE = (4096, 4096)
ROOF_SHAPE = "16384x8192"  # weights larger than the L3: the DRAM-bound shape the roof goal is about
EDGEQ_FMTS = ["t2", "t158", "q4", "i8", "b1"]
GGML_TYPES = {"tq2_0": 66 / 256, "tq1_0": 54 / 256, "q4_0": 18 / 32}  # bytes per weight
PEER = {"edgeq t2": ["ggml tq2_0"], "edgeq t158": ["ggml tq1_0"], "edgeq q4": ["ggml q4_0", "ort matmulnbits"]}
CFLAGS = ["-O3", "-march=native", "-std=c11"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{(proc.stderr or proc.stdout)[-3000:]}")


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False).stdout.strip()


# ---------------------------------------------------------------- builds
def cpu_key() -> str:
    """-march=native builds are only valid on the CPU they were made for: key caches by its flags."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else platform.processor()
    flags = next((ln for ln in info.splitlines() if ln.startswith(("flags", "Features"))), info)
    return hashlib.sha256(flags.encode()).hexdigest()[:8]


def ggml_build_dir() -> Path:
    return CACHE / f"ggml-build-{LLAMA_VER}-{cpu_key()}"


def ggml_source() -> Path:
    """vendor/llama.cpp/ggml of the llama-cpp-python sdist, downloaded and unpacked once into the cache."""
    src = CACHE / f"llama_cpp_python-{LLAMA_VER}"
    if not src.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            run([sys.executable, "-m", "pip", "download", "--no-deps", f"llama-cpp-python=={LLAMA_VER}", "-d", tmp])
            sdist = next(Path(tmp).glob("*.tar.gz"))
            with tarfile.open(sdist) as tf:
                tf.extractall(CACHE)
    g = src / "vendor" / "llama.cpp" / "ggml"
    (g / "ggml.pc.in").touch()  # missing from the sdist; CMake configure_file needs it
    return g


def build_ggml() -> Path:
    """ggml from the llama-cpp-python sdist's vendor/llama.cpp, built once into the cache."""
    g = ggml_source()
    out = ggml_build_dir()
    if not (out / "src" / "libggml-cpu.a").is_file():
        log("building ggml (once) ...")
        run(["cmake", "-S", str(g), "-B", str(out), "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON",
             "-DGGML_OPENMP=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_BUILD_TESTS=OFF", "-DGGML_BUILD_EXAMPLES=OFF"])
        run(["cmake", "--build", str(out), f"-j{os.cpu_count() or 1}"])
    return g


def _edgeq_lib_from_lead() -> tuple[Path, str] | None:
    try:
        from edgeq.build import build_runtime
        from edgeq.targets.registry import get_target
        d = Path(build_runtime(get_target("host")).directory)
    except Exception as e:  # noqa: BLE001 -- the working tree may be mid-edit; fall back below
        log(f"edgeq.build.build_runtime(host) failed ({str(e).splitlines()[0]}); falling back to committed runtimes/")
        return None
    if not (d / "libedgeq.a").is_file():
        return None
    dirty = " (+uncommitted changes)" if git("status", "--porcelain", "--", "runtimes") else ""
    return d, git("log", "-1", "--format=%h", "--", "runtimes") + dirty


def _edgeq_lib_from_git() -> tuple[Path, str]:
    """Newest commit touching runtimes/ whose tree builds (make -C runtimes BUILD=...)."""
    for commit in git("log", "--format=%h", "-n", "20", "--", "runtimes").split():
        out = CACHE / f"runtime-{commit}"
        if (out / "build" / "libedgeq.a").is_file():
            return out / "build", commit
        if (CACHE / f"runtime-{commit}.broken").exists():
            continue
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "runtimes"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(out)], input=arch.stdout, check=True)
        try:
            run(["make", "-C", str(out / "runtimes"), f"BUILD={out / 'build'}", f"-j{os.cpu_count() or 1}",
                 str(out / "build" / "libedgeq.a")])
            return out / "build", commit
        except RuntimeError:
            log(f"runtimes at {commit} does not build; trying an older commit")
            (CACHE / f"runtime-{commit}.broken").touch()
    raise RuntimeError("no buildable runtimes/ commit found")


def build_drivers(ggml_dir: Path) -> tuple[dict[str, Path], str]:
    lead = _edgeq_lib_from_lead()
    libdir, runtime_commit = lead if lead else _edgeq_lib_from_git()
    inc = ROOT / "runtimes" / "include" if lead else libdir.parent / "runtimes" / "include"
    lib = libdir / "libedgeq.a"
    gb = ggml_build_dir() / "src"
    h = hashlib.sha256()
    for p in sorted(DRIVERS.glob("*")):
        h.update(p.read_bytes())
    h.update(lib.read_bytes())
    h.update((inc / "edgeq" / "edgeq.h").read_bytes())
    h.update(" ".join(CFLAGS).encode() + cpu_key().encode())
    bindir = CACHE / f"bin-{h.hexdigest()[:12]}"
    bins = {n: bindir / n for n in ("edgeq_driver", "ggml_driver", "membw_driver")}
    if not all(p.is_file() for p in bins.values()):
        bindir.mkdir(parents=True, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        run([cc, *CFLAGS, f"-I{inc}", str(DRIVERS / "edgeq_driver.c"), str(lib), "-lm", "-o", str(bins["edgeq_driver"])])
        run([cc, *CFLAGS, f"-I{ggml_dir / 'include'}", str(DRIVERS / "ggml_driver.c"), str(gb / "libggml.a"),
             str(gb / "libggml-cpu.a"), str(gb / "libggml-base.a"), "-lm", "-lpthread", "-lstdc++",
             "-o", str(bins["ggml_driver"])])
        run([cc, *CFLAGS, str(DRIVERS / "membw_driver.c"), "-o", str(bins["membw_driver"])])
    return bins, runtime_commit


# ---------------------------------------------------------------- contenders
@dataclass
class Contender:
    name: str
    weight_bytes: float
    times_ns: list[int] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    fn: object = None
    est_ns: float = 1e6

    def sample(self, n: int) -> list[int]:
        if self.proc is not None:
            self.proc.stdin.write(f"{n}\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line or line.startswith("error"):
                raise RuntimeError(f"{self.name}: driver failed")
            return [int(v) for v in line.split()]
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.fn()
            out.append(time.perf_counter_ns() - t0)
        return out

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.write("q\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
            self.proc = None
        self.fn = None


def start(cmd: list[str], threads: int = 1) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        p.kill()
        raise RuntimeError(f"{cmd[0]} failed to start")
    p.label = line[5:].strip()  # type: ignore[attr-defined]
    return p


def make_blobs(M: int, K: int, tmp: Path) -> dict[str, Path]:
    import torch
    from torch import nn

    import edgeq.blob
    import edgeq.packer
    from edgeq.importers.torch_export import from_module

    torch.manual_seed(0)
    fg = from_module(nn.Sequential(nn.Linear(K, M)), torch.zeros(1, K))
    calib = np.random.default_rng(0).standard_normal((8, K)).astype(np.float32)
    out = {}
    for fmt in EDGEQ_FMTS:
        try:
            g = edgeq.packer.pack(fg, calib, edgeq.packer.Recipe(fmt))
            path = tmp / f"{M}x{K}_{fmt}.eqb"
            edgeq.blob.write_blob(g, path)
            out[fmt] = path
        except Exception as e:  # noqa: BLE001
            log(f"edgeq {fmt} {M}x{K}: pack failed: {e}")
    return out


def ort_matmulnbits(M: int, K: int, threads: int, batch: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    bs = 32
    nb = (K + bs - 1) // bs
    rng = np.random.default_rng(0)
    B = rng.integers(0, 256, size=(M, nb, bs // 2), dtype=np.uint8)
    scales = (rng.random(M * nb, dtype=np.float32) * 0.01).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft",
                            K=K, N=M, bits=4, block_size=bs, accuracy_level=4)
    graph = helper.make_graph(
        [node], "mv", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [batch, K])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, M])],
        initializer=[helper.make_tensor("B", TensorProto.UINT8, B.shape, B.tobytes(), raw=True),
                     helper.make_tensor("scales", TensorProto.FLOAT, scales.shape, scales.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 1:  # idle spinning workers would steal a core from the contender being timed
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = {"A": rng.standard_normal((batch, K)).astype(np.float32)}
    sess.run(None, x)
    return (lambda: sess.run(None, x)), float(B.nbytes + scales.nbytes)


def torch_linears(M: int, K: int, threads: int, batch: int):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    lin = nn.Linear(K, M).eval()
    x = torch.randn(batch, K)
    q = torch.ao.quantization.quantize_dynamic(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8).eval()

    def f32():
        with torch.inference_mode():
            lin(x)

    def i8():
        with torch.inference_mode():
            q(x)

    f32()
    i8()
    return [("torch fp32", f32, 4.0 * M * K), ("torch dyn-int8", i8, 1.0 * M * K + 4 * M)]


def measure(contenders: list[Contender], rounds: int, budget_ms: float) -> None:
    """Warm up, estimate, then interleave: each round every contender runs ~budget_ms of reps."""
    for c in contenders:
        w = c.sample(2)
        c.est_ns = float(min(w))
    for r in range(rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for c in order:
            n = int(max(1, min(50, budget_ms * 1e6 / max(c.est_ns, 1.0))))
            c.times_ns.extend(c.sample(n))


def bench_shape(M: int, K: int, threads: int, batch: int, bins: dict[str, Path], rounds: int, budget_ms: float,
                roof_gbs: float, skip: set[str], blobs: dict[str, Path]) -> dict:
    cs: list[Contender] = []
    tb = [str(threads), str(batch)]
    try:
        for fmt, path in blobs.items():
            try:
                cs.append(Contender(f"edgeq {fmt}", float(path.stat().st_size),
                                    proc=start([str(bins["edgeq_driver"]), str(path), *tb], threads)))
            except RuntimeError as e:
                log(str(e))
        for t, bpw in GGML_TYPES.items():
            cs.append(Contender(f"ggml {t}", bpw * M * K, proc=start([str(bins["ggml_driver"]), t, str(K), str(M), *tb], threads)))
        if "ort" not in skip:
            try:
                fn, nbytes = ort_matmulnbits(M, K, threads, batch)
                cs.append(Contender("ort matmulnbits", nbytes, fn=fn))
            except Exception as e:  # noqa: BLE001
                log(f"onnxruntime unavailable: {e}")
        if "torch" not in skip:
            for name, fn, nbytes in torch_linears(M, K, threads, batch):
                cs.append(Contender(name, nbytes, fn=fn))
        log(f"[{M}x{K} batch {batch}, {threads} thread(s)] measuring {len(cs)} contenders x {rounds} rounds ...")
        measure(cs, rounds, budget_ms)
        res = {}
        for c in cs:
            t = np.array(c.times_ns, dtype=np.float64) / 1e6
            p50 = float(np.median(t))
            gbs = c.weight_bytes / (p50 * 1e-3) / 1e9
            res[c.name] = {"p50_ms": p50, "p10_ms": float(np.percentile(t, 10)), "p90_ms": float(np.percentile(t, 90)),
                           "min_ms": float(t.min()), "reps": int(t.size), "weight_bytes": c.weight_bytes,
                           "weight_gbs": gbs, "pct_roof": 100.0 * gbs / roof_gbs}
            if c.proc is not None and getattr(c.proc, "label", ""):
                res[c.name]["kernels"] = c.proc.label
        for name, peers in PEER.items():
            if name in res:
                avail = [p for p in peers if p in res]
                if avail:
                    best = min(avail, key=lambda p: res[p]["p50_ms"])
                    res[name]["target_peer"] = best
                    res[name]["speedup_vs_target_peer"] = res[best]["p50_ms"] / res[name]["p50_ms"]
        for name in [n for n in res if n.startswith("edgeq")]:
            res[name]["speedup_vs"] = {p: res[p]["p50_ms"] / res[name]["p50_ms"] for p in res if not p.startswith("edgeq")}
        return res
    finally:
        for c in cs:
            c.close()


def measure_roof(bin_: Path, reps: int, threads: int) -> dict:
    c = Contender("read roof", float(256 << 20), proc=start([str(bin_), "256", str(threads)], threads))
    try:
        t = np.array(c.sample(reps), dtype=np.float64) * 1e-9
    finally:
        c.close()
    gbs = (256 << 20) / t / 1e9
    return {"bytes": 256 << 20, "threads": threads, "p50_gbs": float(np.median(gbs)), "max_gbs": float(gbs.max()),
            "reps": reps}


def goals(result: dict) -> list[tuple[str, str, float | None, float]]:
    """Issue 4's targets, read off the 1-thread batch-1 runs: (goal, detail, reached, wanted)."""
    out = []
    for shape in {r["shape"] for r in result["runs"]}:
        res = next((r["results"] for r in result["runs"] if r["shape"] == shape and r["threads"] == 1
                    and r["batch"] == 1), None)
        if res is None:
            continue
        for name, want in (("edgeq t2", 1.3), ("edgeq t158", 2.0), ("edgeq q4", 1.2)):
            if "target_peer" in res.get(name, {}):
                out.append((f"{name} vs {res[name]['target_peer']} {shape}", "speedup", res[name]["speedup_vs_target_peer"], want))
        if shape == ROOF_SHAPE:
            for name in ("edgeq t2", "edgeq q4"):
                if name in res:
                    out.append((f"{name} {shape}", "% of read roof", res[name]["pct_roof"], 85.0))
    return sorted(out)


def print_tables(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=max(Console().width, 220))
    for run_ in result["runs"]:
        res, roof = run_["results"], run_["read_roof_gbs"]
        peers = [n for n in res if not n.startswith("edgeq")]
        tab = Table(title=f"{run_['shape']} (M out x K in), batch {run_['batch']}, {run_['threads']} thread(s), p50, "
                          f"measured  —  read roof {roof:.1f} GB/s ({run_['threads']} thread(s))")
        for col in ["contender", "ms p50", "ms p10–p90", "weight MB", "GB/s", "% roof", "vs target peer"]:
            tab.add_column(col, justify="left" if col == "contender" else "right")
        for p in peers:
            tab.add_column(f"vs {p}", justify="right")
        for name, r in res.items():
            tp = f"{r['speedup_vs_target_peer']:.2f}× ({r['target_peer']})" if "target_peer" in r else ""
            label = f"{name} [{r['kernels']}]" if "kernels" in r else name
            row = [label, f"{r['p50_ms']:.3f}", f"{r['p10_ms']:.3f}–{r['p90_ms']:.3f}", f"{r['weight_bytes'] / 1e6:.1f}",
                   f"{r['weight_gbs']:.1f}", f"{r['pct_roof']:.0f}%", tp]
            row += [f"{r['speedup_vs'][p]:.2f}×" if "speedup_vs" in r else "" for p in peers]
            tab.add_row(*row)
        con.print(tab)
    tab = Table(title="issue 4 goals (1 thread, batch 1, measured)")
    for col in ("goal", "metric", "reached", "wanted", "met"):
        tab.add_column(col)
    for goal, metric, got, want in goals(result):
        tab.add_row(goal, metric, f"{got:.2f}", f"≥{want:g}", "yes" if got >= want else "no")
    con.print(tab)
    con.print(f"edgeq runtime: runtimes commit {result['edgeq_runtime_commit']}; ratios are peer_time / edgeq_time "
              f"(>1 = edgeq faster)")


def plan_runs(shapes: list[tuple[int, int]], threads: list[int], batches: list[int]) -> list[tuple[int, int, int, int]]:
    """(M, K, threads, batch): every shape at batch 1, the batch shape also at each batch size."""
    runs = [(m, k, t, 1) for m, k in shapes for t in threads]
    if BATCH_SHAPE in shapes:
        runs += [(*BATCH_SHAPE, t, b) for b in batches for t in threads]
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=",".join(f"{m}x{k}" for m, k in SHAPES), help="MxK list (M out, K in)")
    ap.add_argument("--threads", default="1,2", help="thread counts, each run for every shape")
    ap.add_argument("--batches", default="8,32", help=f"extra batch sizes for {BATCH_SHAPE[0]}x{BATCH_SHAPE[1]}")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--budget-ms", type=float, default=15.0, help="time per contender per round")
    ap.add_argument("--skip", default="", help="comma list of: ort, torch")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    ggml_dir = build_ggml()
    bins, commit = build_drivers(ggml_dir)
    log(f"edgeq runtime from runtimes commit {commit}")
    threads = [int(t) for t in a.threads.split(",")]
    roofs = {t: measure_roof(bins["membw_driver"], 15, t) for t in threads}
    for t, r in roofs.items():
        log(f"streaming read roof, {t} thread(s): {r['p50_gbs']:.1f} GB/s (p50), {r['max_gbs']:.1f} max")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
              "edgeq_runtime_commit": commit, "read_roof": list(roofs.values()), "runs": []}
    skip = set(filter(None, a.skip.split(",")))
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in a.shapes.split(",")]
    batches = [int(b) for b in a.batches.split(",") if b]
    tmp = Path(tempfile.mkdtemp(prefix="edgeq-bench-"))
    try:
        blobs = {}
        for m, k, t, b in plan_runs(shapes, threads, batches):
            if (m, k) not in blobs:
                log(f"[{m}x{k}] packing edgeq blobs ...")
                blobs[(m, k)] = make_blobs(m, k, tmp)
            res = bench_shape(m, k, t, b, bins, a.rounds, a.budget_ms, roofs[t]["p50_gbs"], skip, blobs[(m, k)])
            result["runs"].append({"shape": f"{m}x{k}", "threads": t, "batch": b, "read_roof_gbs": roofs[t]["p50_gbs"],
                                   "results": res})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["read_roof_after"] = [measure_roof(bins["membw_driver"], 15, t) for t in threads]
    print_tables(result)
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))
        log(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
