"""edgeq's LLM decoder side by side with llama.cpp (llama-cpp-python==0.3.36, built from its sdist), in one
run on one machine, plus a modelled Raspberry Pi 5 figure for the full BitNet b1.58 2B4T.

1. Agreement, on the committed tiny model (examples/tiny-llm): for each of the 5 prompts of
   examples/tiny-llm/reference.py, llama.cpp live decodes 64 greedy tokens one eval at a time, keeping
   every position's logits; edgeq (C decoder, `llamacpp` and `edgeq` activation modes; and the numpy
   reference decoder) is teacher-forced along that sequence (logits cosine per position) and decodes
   its own 64 greedy tokens (equal or not).
2. Speed, on a synthetic GGUF with BitNet-2B4T layer shapes (benchmarks/llm_synth.py, 4 layers):
   prompt tokens/s (a 128-token prompt) and decode tokens/s (64 tokens after an 8-token prompt) for
   llama.cpp (n_threads = n_threads_batch = T) and the edgeq C decoder in both modes, at T = 1 and 2;
   rounds interleaved (direction alternating), best and median reported. Measured.
3. Modelled Pi 5 decode tokens/s of the full 2B4T (30 layers, vocabulary 128256, tied embedding) from
   the rpi5 roofline (edgeq.targets.latency) and the executed-instruction counts per weight of edgeq's
   dotprod kernels in the newest benchmarks/results/bench_arm-*.json, beside the published figures.

    .venv/bin/python benchmarks/bench_llm.py [--threads 1,2] [--rounds 5] [--skip agreement,speed,model]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llm_synth  # sibling script: the synthetic 2B4T-shaped GGUF

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TINY_GGUF = llm_synth.TINY_GGUF
PROMPTS = ["Return the number of", "This module provides", "Raise ValueError if the", "The default value is",
           "Create a new socket"]  # examples/tiny-llm/reference.py
MODES = ("edgeq", "llamacpp")
NO_ENGINE = "edgeq C decoder not available on this checkout (edgeq.llm.engine is missing)"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- edgeq engines
@dataclass
class Generation:
    """What Engine.generate returns, for the contenders that are not the C Engine."""

    tokens: list[int]
    prompt_len: int
    prompt_seconds: float
    decode_seconds: float  # the len(tokens) - 1 single-token steps (the first token comes from the prompt)
    arena_bytes: int = 0
    weight_bytes: int = 0

    @property
    def prompt_tok_s(self) -> float:
        return self.prompt_len / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tok_s(self) -> float:
        return (len(self.tokens) - 1) / self.decode_seconds if self.decode_seconds > 0 else 0.0


class ReferenceEngine:
    """The numpy reference decoder behind the C Engine's interface: for checking this harness and for the
    agreement rows, never for edgeq's speed (it is numpy, not the runtime)."""

    def __init__(self, path: Path, mode: str):
        from edgeq.llm.gguf_llama import load_llama
        from edgeq.llm.reference import Decoder

        model = load_llama(path)
        self.params = model.params
        self._dec = Decoder(model, mode)
        self._weight_bytes = sum(int(w.raw.nbytes) for w in {id(w): w for w in model.weights.values()}.values())

    def reset(self) -> None:
        self._dec.reset()

    def forward(self, tokens: list[int]) -> np.ndarray:
        return self._dec.forward(list(tokens))

    def generate(self, prompt: list[int], n: int, temperature: float = 0.0, **_) -> Generation:
        if temperature != 0.0:
            raise ValueError("the reference adapter only decodes greedily")
        self.reset()
        t0 = time.perf_counter()
        logits = self.forward(prompt)
        t1 = time.perf_counter()
        out = [int(np.argmax(logits[-1]))]
        while len(out) < n:
            out.append(int(np.argmax(self.forward([out[-1]])[-1])))
        return Generation(out, len(prompt), t1 - t0, time.perf_counter() - t1, self._dec.cache.k.nbytes * 2,
                          self._weight_bytes)


def open_edgeq(path: Path, mode: str, threads: int, backend: str = "c"):
    """The C decoder (edgeq.llm.engine.Engine), or None on a checkout that does not have it yet; backend
    "reference" puts the numpy decoder in its place (to check this harness, never to report edgeq's speed)."""
    if backend == "reference":
        return ReferenceEngine(path, mode)
    try:
        from edgeq.llm.engine import Engine
    except ImportError:
        return None
    return Engine.open(str(path), mode=mode, threads=threads)


# ---------------------------------------------------------------- llama.cpp
def open_llama(path: Path, threads: int, n_ctx: int):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_threads=threads, n_threads_batch=threads,
                 seed=0, verbose=False)


def llama_logits(llm) -> np.ndarray:
    """The last evaluated token's logits (logits_all=True crashes this build on the tiny model)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float32)


def llama_greedy_teacher(llm, prompt: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """n greedy tokens, one eval per token, and the logits of every position of prompt + tokens[:-1]."""
    llm.reset()
    rows = []
    for tok in prompt:
        llm.eval([tok])
        rows.append(llama_logits(llm))
    out = [int(np.argmax(rows[-1]))]
    while len(out) < n:
        llm.eval([out[-1]])
        rows.append(llama_logits(llm))
        out.append(int(np.argmax(rows[-1])))
    return out, np.stack(rows)


def llama_generate(llm, prompt: list[int], n: int) -> Generation:
    """Same work as Engine.generate: the prompt in one batch, then n - 1 single-token evals (the first token
    comes from the prompt's logits); greedy."""
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    out = [int(np.argmax(llama_logits(llm)))]
    while len(out) < n:
        llm.eval([out[-1]])
        out.append(int(np.argmax(llama_logits(llm))))
    return Generation(out, len(prompt), t1 - t0, time.perf_counter() - t1)


def wait_quiet(max_load: float | None, max_wait_s: float) -> float:
    """Waits (up to max_wait_s) for the 1-minute load average to fall below max_load: other work on a shared
    machine slows every contender unevenly. Returns the load average measurement starts at."""
    t0 = time.monotonic()
    while max_load is not None and os.getloadavg()[0] > max_load and time.monotonic() - t0 < max_wait_s:
        time.sleep(5)
    return round(os.getloadavg()[0], 2)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------- 1. agreement
def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def agreement(path: Path, n: int, use_engine: bool) -> dict:
    from edgeq.llm.gguf_llama import load_llama
    from edgeq.llm.tokenizer import GGUFTokenizer

    tok = GGUFTokenizer(load_llama(path))
    llm = open_llama(path, 1, 256)
    ref = [llama_greedy_teacher(llm, tok.encode(p), n) for p in PROMPTS]
    del llm
    contenders = []
    for mode in MODES:
        eng = open_edgeq(path, mode, 1) if use_engine else None
        if eng is not None:
            contenders.append((f"edgeq C decoder, {mode} mode", eng))
        contenders.append((f"edgeq numpy reference, {mode} mode", ReferenceEngine(path, mode)))
    rows = []
    for name, eng in contenders:
        cos, equal, first_diff = [], 0, []
        for p, (greedy, logits) in zip(PROMPTS, ref, strict=True):
            ids = tok.encode(p)
            eng.reset()
            got = eng.forward(ids + greedy[:-1])
            cos.append(cosine_rows(got, logits))
            mine = list(eng.generate(ids, n, temperature=0.0).tokens)
            equal += mine == greedy
            first_diff.append(next((i for i, (x, y) in enumerate(zip(mine, greedy, strict=True)) if x != y), None))
        c = np.concatenate(cos)
        rows.append({"contender": name, "min_cosine": float(c.min()), "mean_cosine": float(c.mean()),
                     "positions": int(c.size), "greedy_equal": equal, "prompts": len(PROMPTS),
                     "first_divergence": first_diff})
        log(f"agreement  {name:<36} min cos {c.min():.6f}  greedy equal {equal}/{len(PROMPTS)}")
    return {"model": str(path.relative_to(ROOT)), "generate": n, "prompts": PROMPTS, "rows": rows,
            "llama_cpp_greedy": [g for g, _ in ref]}


# ---------------------------------------------------------------- 2. speed
@dataclass
class Speed:
    name: str
    threads: int
    run: object  # (prompt, n) -> Generation
    prompt_tok_s: list[float] = field(default_factory=list)
    decode_tok_s: list[float] = field(default_factory=list)
    memory: dict = field(default_factory=dict)


def speed(path: Path, threads: list[int], rounds: int, prompt_len: int, short_prompt: int, n: int,
          use_engine: bool, quiet: tuple[float | None, float] = (None, 0.0), backend: str = "c",
          modes: tuple[str, ...] = MODES) -> dict:
    from edgeq.llm.gguf_llama import load_llama

    params = load_llama(path).params
    rng = np.random.default_rng(0)
    long_ids = [0] + rng.integers(2, params.vocab, prompt_len - 1).tolist()
    short_ids = long_ids[:short_prompt]
    contenders: list[Speed] = []
    for t in threads:
        before = rss_bytes()
        llm = open_llama(path, t, params.context)
        c = Speed(f"llama.cpp TQ2_0 ({t}T)", t, lambda p, k, llm=llm: llama_generate(llm, p, k))
        c.run(short_ids, 2)
        c.memory = {"rss_delta_bytes": rss_bytes() - before, "how": "process RSS growth over opening the model and "
                    "one generate (mmapped weights + KV cache + compute buffers)"}
        contenders.append(c)
        for mode in modes:
            eng = open_edgeq(path, mode, t, backend) if use_engine else None
            if eng is None:
                continue
            c = Speed(f"edgeq {'' if backend == 'c' else 'numpy reference, '}{mode} mode ({t}T)", t, lambda p, k, eng=eng: eng.generate(p, k, temperature=0.0))
            g = c.run(short_ids, 2)
            c.memory = {"arena_bytes": int(g.arena_bytes), "weight_bytes": int(g.weight_bytes)}
            contenders.append(c)
    log(f"speed: {len(contenders)} contenders x {rounds} rounds (prompt {prompt_len}, decode {n} after {short_prompt})")
    loads = []
    for r in range(rounds):
        loads.append(wait_quiet(*quiet))
        for c in contenders if r % 2 == 0 else contenders[::-1]:
            c.prompt_tok_s.append(float(c.run(long_ids, 1).prompt_tok_s))
            c.decode_tok_s.append(float(c.run(short_ids, n).decode_tok_s))
    out = []
    for c in contenders:
        row = {"contender": c.name, "threads": c.threads, "memory": c.memory,
               "prompt_tok_s": {"best": max(c.prompt_tok_s), "median": float(np.median(c.prompt_tok_s)),
                                "all": c.prompt_tok_s},
               "decode_tok_s": {"best": max(c.decode_tok_s), "median": float(np.median(c.decode_tok_s)),
                                "all": c.decode_tok_s}, "source": "measured"}
        peer = next(x for x in contenders if x.name.startswith("llama.cpp") and x.threads == c.threads)
        if c is not peer:
            for k in ("prompt_tok_s", "decode_tok_s"):
                row[k]["vs_llama_cpp_median"] = row[k]["median"] / float(np.median(getattr(peer, k)))
                row[k]["vs_llama_cpp_best"] = row[k]["best"] / max(getattr(peer, k))
        out.append(row)
    return {"model": str(path), "params": params.__dict__, "prompt_tokens": prompt_len, "decode_tokens": n,
            "decode_prompt_tokens": short_prompt, "rounds": rounds, "loadavg_per_round": loads, "rows": out}


# ---------------------------------------------------------------- 3. modelled Pi 5
@dataclass(frozen=True)
class DecoderShape:
    name: str
    dim: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int

    def linears(self) -> list[tuple[str, int, int]]:
        """(name, out, in) of one layer's mat-vecs."""
        kv = self.dim // self.heads * self.kv_heads
        return [("q", self.dim, self.dim), ("k", kv, self.dim), ("v", kv, self.dim), ("o", self.dim, self.dim),
                ("gate", self.ffn, self.dim), ("up", self.ffn, self.dim), ("down", self.dim, self.ffn)]


BITNET_2B4T = DecoderShape("BitNet b1.58 2B4T", 2560, 6912, 30, 20, 5, 128256)
BITNET_3B = DecoderShape("BitNet b1.58 3B", 3200, 8640, 26, 32, 32, 32002)
OPS_PER_LAYER = 8  # non-weight ops per layer (2 RMSNorm, RoPE, attention, 2 residual adds, SwiGLU, quantize), as docs/latency-model.md
# Published (DESIGN §7; T-MAC repository README): BitNet-b1.58-3B token generation on a Raspberry Pi 5.
PUBLISHED = [{"system": "T-MAC", "model": "BitNet b1.58 3B", "tok_s": {1: 8.03, 2: 11.09}},
             {"system": "llama.cpp (Q2_K)", "model": "BitNet b1.58 3B", "tok_s": {1: 1.37, 2: 2.71}}]
# Kernel rows of bench_arm.py: format label -> contender name in its JSON.
ARM_KERNELS = {"t2 row": "neon_dotprod t2 row", "t2 block": "neon_dotprod t2 block", "q4": "neon_dotprod q4 g32",
               "i8": "neon_dotprod i8", "ggml tq2_0": "ggml tq2_0", "ggml q4_0": "ggml q4_0"}
VARIANTS = [  # (label, layer kernel, head kernel)
    ("edgeq T2 per-tensor scale, Q4 head", "t2 row", "q4"),
    ("edgeq T2 per-block scale, Q4 head", "t2 block", "q4"),
    ("edgeq T2 per-tensor scale, I8 head", "t2 row", "i8"),
    ("llama.cpp TQ2_0, Q4_0 head (same model)", "ggml tq2_0", "ggml q4_0"),
]


def _committed_at(path: Path) -> float:
    """When git last committed the file (a checkout gives every file the same mtime); else its mtime."""
    out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct", "--", str(path)], capture_output=True,
                         text=True, check=False).stdout.strip()
    return float(out) if out else path.stat().st_mtime


def latest_arm_json() -> Path:
    """The newest bench_arm result that counted every kernel the model needs at the 2B4T shapes."""
    def complete(path: Path) -> bool:
        have = {(r["name"], r["K"]) for r in json.loads(path.read_text()).get("rows", [])}
        return all((name, k) in have for name in ARM_KERNELS.values() for k in (2560, 6912))

    found = sorted((p for p in RESULTS.glob("bench_arm-*.json") if complete(p)), key=_committed_at)
    if not found:
        raise FileNotFoundError(f"no {RESULTS}/bench_arm-*.json with the 2560x6912 / 6912x2560 counts: "
                                "run benchmarks/bench_arm.py --json first")
    return found[-1]


def arm_costs(path: Path) -> dict[str, list[dict]]:
    """kernel label -> bench_arm rows [{name, M, K, insn_per_weight, bits_per_weight}] (emulated counts; bits
    from the stored size of that shape: edgeq blob file, ggml row size). Where the file also counted the
    rows4 layout (the rpi5 board's preferred layout), that kernel is the one the Pi 5 runs and is used."""
    rows = json.loads(path.read_text())["rows"]
    out = {}
    for label, name in ARM_KERNELS.items():
        pick = name + " rows4" if any(r["name"] == name + " rows4" for r in rows) else name
        out[label] = [{"name": pick, "M": r["M"], "K": r["K"], "insn_per_weight": r["insn_per_weight"],
                       "bits_per_weight": r["weight_bytes"] * 8 / (r["M"] * r["K"])}
                      for r in rows if r["name"] == pick]
    return out


def nearest(rows: list[dict], M: int, K: int) -> dict:
    """The counted shape closest to (M, K): same input width first (it sets the inner-loop length)."""
    return min(rows, key=lambda r: (abs(math.log(r["K"] / K)), abs(math.log(r["M"] / M))))


def modelled_decode(shape: DecoderShape, layer_kernel: str, head_kernel: str, threads: int,
                    costs: dict[str, list[dict]], kv_position: int = 0, kv_bytes: int = 2) -> dict:
    """One decode step on the rpi5 roofline (edgeq.targets.latency): each mat-vec takes
    max(instructions / (IPC x clock x threads), stored bytes / read bandwidth) + the per-op overhead; the
    non-weight ops cost the overhead each plus the KV cache they read at `kv_position`."""
    from edgeq.targets import latency
    from edgeq.targets.registry import get_target

    target = get_target("rpi5")
    t = min(threads, target.cpu["cores"])
    bw = target.read_gbps(t) * 1e9
    overhead = target.section("latency")["op_overhead_us"] * 1e-6
    mats = [(layer_kernel, m, k) for _ in range(shape.layers) for _, m, k in shape.linears()]
    mats.append((head_kernel, shape.vocab, shape.dim))
    compute_s = memory_s = total_s = 0.0
    for kernel, m, k in mats:
        c = nearest(costs[kernel], m, k)
        compute = latency.from_instructions(target, round(m * k * c["insn_per_weight"]), t)
        memory = int(m * k * c["bits_per_weight"] / 8) / bw
        compute_s, memory_s = compute_s + compute, memory_s + memory
        total_s += max(compute, memory) + overhead
    kv = shape.layers * 2 * (shape.dim // shape.heads * shape.kv_heads) * kv_position * kv_bytes
    total_s += shape.layers * OPS_PER_LAYER * overhead + kv / bw
    return {"tok_s": 1 / total_s, "ms": total_s * 1e3, "compute_ms": compute_s * 1e3, "memory_ms": memory_s * 1e3,
            "threads": t, "source": "modelled"}


def modelled(arm_json: Path, threads: list[int], kv_position: int) -> dict:
    costs = arm_costs(arm_json)
    out = []
    for shape in (BITNET_2B4T, BITNET_3B):
        for label, lk, hk in VARIANTS:
            out.append({"model": shape.name, "variant": label, "layer_kernel": costs[lk][0]["name"],
                        "head_kernel": costs[hk][0]["name"],
                        "runs": [modelled_decode(shape, lk, hk, t, costs, kv_position) for t in threads]})
    return {"target": "rpi5", "arm_counts": str(arm_json.relative_to(ROOT)), "kv_position": kv_position,
            "kv_cache": "f16", "ops_per_layer": OPS_PER_LAYER, "rows": out, "published": PUBLISHED,
            "published_source": "T-MAC repository README (DESIGN §7; docs/latency-model.md)"}


# ---------------------------------------------------------------- report
def print_report(result: dict) -> None:
    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores), "
          f"load average before {result['machine']['loadavg_before']}")
    if not result["edgeq_engine"]:
        print(f"NOTE: {NO_ENGINE}; edgeq rows are missing from the speed table")
    a = result.get("agreement")
    if a:
        print(f"\nAgreement with llama.cpp (live), {a['model']}: {len(a['prompts'])} prompts x {a['generate']} "
              "greedy tokens; teacher-forced logits cosine over every position")
        print(f"{'contender':<38} {'min cos':>9} {'mean cos':>9} {'greedy equal':>13}")
        for r in a["rows"]:
            print(f"{r['contender']:<38} {r['min_cosine']:>9.6f} {r['mean_cosine']:>9.6f} "
                  f"{r['greedy_equal']:>9}/{r['prompts']}")
    s = result.get("speed")
    if s:
        p = s["params"]
        print(f"\nSpeed (measured), synthetic BitNet-2B4T-shaped GGUF: {p['layers']} layers, dim {p['dim']}, "
              f"ffn {p['ffn']}, {p['heads']}/{p['kv_heads']} heads, vocab {p['vocab']}, absmean scale per "
              f"{s.get('synthetic_absmean_scale', 'block')}; prompt {s['prompt_tokens']} "
              f"tokens; decode {s['decode_tokens']} tokens after {s['decode_prompt_tokens']}; {s['rounds']} rounds "
              f"(load average at each round's start {s['loadavg_per_round']})")
        print(f"{'contender':<42} {'prompt tok/s best':>17} {'median':>8} {'x llama.cpp':>15} "
              f"{'decode tok/s best':>17} {'median':>8} {'x llama.cpp':>15}  memory")
        print(f"{'':<42} {'':>17} {'':>8} {'median / best':>15} {'':>17} {'':>8} {'median / best':>15}")
        for r in s["rows"]:
            pr, de = r["prompt_tok_s"], r["decode_tok_s"]
            mem = r["memory"]
            m = (f"RSS +{mem['rss_delta_bytes'] / 1e6:.0f} MB" if "rss_delta_bytes" in mem
                 else f"arena {mem['arena_bytes'] / 1e6:.1f} MB + weights {mem['weight_bytes'] / 1e6:.1f} MB")
            rat = (lambda d: f"{d['vs_llama_cpp_median']:.2f}x / {d['vs_llama_cpp_best']:.2f}x"
                   if "vs_llama_cpp_median" in d else "")
            print(f"{r['contender']:<42} {pr['best']:>17.1f} {pr['median']:>8.1f} {rat(pr):>15} "
                  f"{de['best']:>17.1f} {de['median']:>8.1f} {rat(de):>15}  {m}")
    mo = result.get("modelled")
    if mo:
        ths = [x["threads"] for x in mo["rows"][0]["runs"]]
        print(f"\nModelled Raspberry Pi 5 decode tok/s (roofline, targets/rpi5.toml; instructions/weight emulated in "
              f"{mo['arm_counts']}; KV cache f16 at position {mo['kv_position']})")
        print(f"{'model':<20} {'variant':<42} " + " ".join(f"{f'{t}T':>7}" for t in ths) + "  ms/token at 1T "
              "(compute / memory floor)")
        kernels = sorted({k for r in mo["rows"] for k in (r["layer_kernel"], r["head_kernel"])})
        print(f"kernels counted: {', '.join(kernels)}")
        for r in mo["rows"]:
            one = r["runs"][0]
            print(f"{r['model']:<20} {r['variant']:<42} " + " ".join(f"{x['tok_s']:>7.2f}" for x in r["runs"])
                  + f"  {one['ms']:.0f} ({one['compute_ms']:.0f} / {one['memory_ms']:.0f})")
        for pub in mo["published"]:
            print(f"{pub['model']:<20} {pub['system'] + ' (published)':<42} "
                  + " ".join(f"{pub['tok_s'][t]:>7.2f}" if t in pub["tok_s"] else f"{'—':>7}" for t in ths))
        print(f"published: {mo['published_source']}")


def git_sha() -> str:
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         check=False).stdout.strip() or "unknown"
    return sha


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=128, help="prompt tokens for prompt tok/s")
    ap.add_argument("--decode", type=int, default=64, help="tokens decoded for decode tok/s")
    ap.add_argument("--short-prompt", type=int, default=8, help="prompt before the decoded tokens")
    ap.add_argument("--generate", type=int, default=64, help="greedy tokens per prompt for agreement")
    ap.add_argument("--layers", type=int, default=llm_synth.SynthConfig.layers, help="synthetic model layers")
    ap.add_argument("--scale", choices=("tensor", "block"), default=llm_synth.SynthConfig.scale,
                    help="synthetic model's absmean scale: per tensor (BitNet) or per 256-weight block")
    ap.add_argument("--kv-position", type=int, default=128, help="context position of the modelled decode step")
    ap.add_argument("--quiet-load", type=float, help="before each round, wait for the 1-minute load average "
                    "to fall below this")
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="longest wait for --quiet-load, seconds")
    ap.add_argument("--edgeq-backend", choices=("c", "reference"), default="c",
                    help="speed rows from the C decoder, or (to check this script) the numpy reference")
    ap.add_argument("--speed-modes", default=",".join(MODES), help="edgeq activation modes timed for speed")
    ap.add_argument("--skip", default="", help="comma list of: agreement, speed, model")
    ap.add_argument("--json", type=Path, help=f"default {RESULTS}/bench_llm-<git sha>.json")
    a = ap.parse_args(argv)
    skip = set(filter(None, a.skip.split(",")))
    threads = [int(t) for t in a.threads.split(",")]
    try:
        import edgeq.llm.engine  # noqa: F401
        have_engine = True
    except ImportError:
        have_engine = False
        log(f"NOTE: {NO_ENGINE}")
    use_engine = have_engine or a.edgeq_backend == "reference"
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    import llama_cpp

    result = {"machine": {"cpu": cpu, "cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]},
              "git": git_sha(), "llama_cpp_python": llama_cpp.__version__, "edgeq_engine": have_engine,
              "speed_backend": "C decoder" if a.edgeq_backend == "c" else "numpy reference"}
    if "agreement" not in skip:
        result["agreement"] = agreement(TINY_GGUF, a.generate, use_engine)
    if "speed" not in skip:
        path = llm_synth.synth_gguf(llm_synth.SynthConfig(layers=a.layers, scale=a.scale))
        result["speed"] = speed(path, threads, a.rounds, a.prompt, a.short_prompt, a.decode, use_engine,
                                (a.quiet_load, a.quiet_wait), a.edgeq_backend,
                                tuple(m for m in a.speed_modes.split(",") if m))
        result["speed"]["synthetic_absmean_scale"] = a.scale
    if "model" not in skip:
        result["modelled"] = modelled(latest_arm_json(), [1, 2, 4], a.kv_position)
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    print_report(result)
    out = a.json or RESULTS / f"bench_llm-{result['git']}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
