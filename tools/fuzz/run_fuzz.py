"""Builds and runs the fuzzers for a bounded time and prints executions, coverage and crashes.

    python tools/fuzz/run_fuzz.py [--seconds 300] [--runs N] [--only c|python] [--work DIR]
    python tools/fuzz/run_fuzz.py --coverage-report [--only c|python] [--work DIR]   # per-file coverage

c       tools/fuzz/fuzz_runtime.c: libFuzzer + ASan + UBSan over the C loader and executor (clang-14)
python  tools/fuzz/fuzz_python.py: atheris over the blob reader and the GGUF / .tflite importers

Corpora grow in WORK/corpus_{c,python} across runs; crash reproducers land in WORK/crashes. The
instrumented runtime is built once per source version into the edgeq cache (like edgeq.runtime).
Exit status 1 if any harness found a crash. `make fuzz` runs this; tests/test_fuzz.py runs it briefly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tools" / "fuzz"
RUNTIME = ROOT / "runtimes"
CLANG = "clang-14"
SANITIZERS = "address,undefined"
# The fuzz build: no CRC checks (EDGEQ_SKIP_CRC); the harness passes no public key, so no signature check.
MAKE_VARS = {"CC": CLANG, "SKIP_CRC": "1", "OPT": "-O1",
             "TARGET_CFLAGS": f"-g -fsanitize=fuzzer-no-link,{SANITIZERS} -fno-sanitize-recover=all "
                              "-fno-omit-frame-pointer",
             # comparison tracing in the kernels' inner loops cost half the time and finds nothing the
             # edge counters do not: the kernels keep coverage and sanitizers, not cmp tracing
             "KERNEL_CFLAGS": "-fno-sanitize-coverage=trace-cmp"}
ARTIFACTS = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-")


@dataclass
class Result:
    """What one bounded run of a harness did (all figures measured from libFuzzer's own output)."""

    harness: str
    executions: int = 0
    exec_per_s: int = 0
    coverage: int = 0      # libFuzzer `cov:`: instrumented edges (C) / bytecode branches (Python) reached
    features: int = 0      # libFuzzer `ft:`: coverage features (edges x hit-count buckets, ...)
    counters: int = 0      # instrumented edges in the binary / modules (denominator of coverage)
    corpus: int = 0
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        share = f" of {self.counters}" if self.counters else ""
        return (f"{self.harness}: {self.executions} executions ({self.exec_per_s}/s) in {self.seconds:.0f} s, "
                f"coverage {self.coverage}{share} edges, {self.features} features, corpus {self.corpus}, "
                f"{len(self.crashes)} crash(es) (measured)")


def harness_key() -> str:
    """Hash of the runtime sources, the harness, the make variables and the compiler version."""
    from edgeq.build.builder import source_files

    version = subprocess.run([CLANG, "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    h = hashlib.sha256(json.dumps({"vars": MAKE_VARS, "cc": version}, sort_keys=True).encode())
    for path in [*source_files(RUNTIME), HERE / "fuzz_runtime.c"]:
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build_c_harness() -> Path:
    """The libFuzzer binary, built once per source version (temp dir + rename, as edgeq.runtime)."""
    from edgeq.build.builder import cache_root, run_make

    if shutil.which(CLANG) is None:
        raise SystemExit(f"{CLANG} not found: install clang-14 and libclang-rt-14-dev (tools/bootstrap.sh)")
    final = cache_root() / "fuzz" / f"fuzz_runtime-{harness_key()}"
    binary = final / "fuzz_runtime"
    if binary.is_file():
        return binary
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        run_make(RUNTIME, ["-s", f"BUILD={stage}", *[f"{k}={v}" for k, v in MAKE_VARS.items()],
                           str(stage / "libedgeq.a")])
        subprocess.run([CLANG, "-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME / 'include'}",
                        f"-fsanitize=fuzzer,{SANITIZERS}", "-fno-sanitize-recover=all", str(HERE / "fuzz_runtime.c"),
                        str(stage / "libedgeq.a"), "-lm", "-pthread", "-o", str(stage / "fuzz_runtime")], check=True)
        try:
            stage.rename(final)
        except OSError:  # a concurrent build of the same sources won
            if not binary.is_file():
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return binary


def coverage_report(corpus: list[Path], work: Path) -> str:
    """llvm-cov line/region coverage of the runtime's sources when the corpus (and seeds) replay once
    through a build with source-based coverage (no sanitizers): which code the campaign reached."""
    from edgeq.build.builder import run_make

    build = work.resolve() / "llvm-cov"
    shutil.rmtree(build, ignore_errors=True)
    flags = "-g -fprofile-instr-generate -fcoverage-mapping"
    run_make(RUNTIME, ["-s", f"BUILD={build}", f"CC={CLANG}", "SKIP_CRC=1", "OPT=-O1", f"TARGET_CFLAGS={flags}",
                       str(build / "libedgeq.a")])
    binary = build / "fuzz_runtime"
    subprocess.run([CLANG, "-std=c11", *flags.split(), f"-I{RUNTIME / 'include'}", "-fsanitize=fuzzer",
                    str(HERE / "fuzz_runtime.c"), str(build / "libedgeq.a"), "-lm", "-pthread", "-o", str(binary)],
                   check=True)
    env = {**os.environ, "LLVM_PROFILE_FILE": str(build / "replay.profraw")}
    subprocess.run([str(binary), "-runs=0", *map(str, corpus)], env=env, capture_output=True, check=True)
    subprocess.run(["llvm-profdata-14", "merge", "-sparse", str(build / "replay.profraw"), "-o",
                    str(build / "replay.profdata")], check=True)
    sources = sorted(str(p) for p in [*(RUNTIME / "src").glob("*.c"), *(RUNTIME / "kernels").glob("*/*.c")])
    out = subprocess.run(["llvm-cov-14", "report", str(binary), f"-instr-profile={build / 'replay.profdata'}",
                          *sources], capture_output=True, text=True, check=True).stdout
    return out.replace(str(RUNTIME) + "/", "")


PY_PARSERS = ["edgeq/blob/reader.py", "edgeq/formats/packed.py", "edgeq/importers/gguf_import.py",
              "edgeq/importers/tflite_import.py"]


def python_coverage_report(corpus: list[Path]) -> str:
    """Line coverage of the Python parsers when the corpus (and seeds) replay once (stdlib sys.settrace)."""
    import inspect
    import types

    sys.argv = sys.argv[:1]
    sys.path.insert(0, str(HERE))
    import fuzz_python

    def code_lines(code: types.CodeType) -> set[int]:
        """Lines of the functions' bodies (module and class bodies ran at import, before tracing)."""
        lines = set()
        if code.co_flags & inspect.CO_OPTIMIZED:
            lines = {line for _, _, line in code.co_lines() if line is not None and line != code.co_firstlineno}
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                lines |= code_lines(const)
        return lines

    files = {str(ROOT / f): code_lines(compile((ROOT / f).read_text(), str(ROOT / f), "exec")) for f in PY_PARSERS}
    hit: dict[str, set[int]] = {f: set() for f in files}

    def tracer(frame, event, arg):
        if frame.f_code.co_filename in hit:
            hit[frame.f_code.co_filename].add(frame.f_lineno)
            return tracer
        return None

    fuzz_python.WORK = Path(tempfile.mkdtemp(prefix="edgeq-fuzz-cov-"))
    sys.settrace(tracer)
    try:
        for path in sorted(p for d in corpus for p in d.iterdir()):
            fuzz_python.parse(path.read_bytes())
    finally:
        sys.settrace(None)
        shutil.rmtree(fuzz_python.WORK, ignore_errors=True)
    rows = [f"{'file':<36} {'lines':>6} {'hit':>6} {'cover':>7}"]
    for f, lines in files.items():
        got = len(hit[f] & lines)
        rows.append(f"{Path(f).relative_to(ROOT)!s:<36} {len(lines):>6} {got:>6} {100 * got / len(lines):>6.1f}%")
    return "\n".join(rows)


def seeds(work: Path) -> Path:
    """Seed corpora (tools/fuzz/make_seeds.py), written once per work directory."""
    out = work / "seeds"
    if not (out / "blob").is_dir():
        subprocess.run([sys.executable, str(HERE / "make_seeds.py"), str(out)], check=True, env=_env())
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def parse_log(harness: str, log: str, crashes: list[str]) -> Result:
    """Executions and coverage from libFuzzer's status lines and final stats."""
    r = Result(harness, crashes=crashes)
    status = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", log, re.MULTILINE)
    if status:
        n, cov, ft, corp = status[-1]
        r.executions, r.coverage, r.features, r.corpus = int(n), int(cov), int(ft), int(corp)
    if m := re.search(r"stat::number_of_executed_units: (\d+)", log):
        r.executions = int(m.group(1))
    if m := re.search(r"stat::average_exec_per_sec:\s+(\d+)", log):
        r.exec_per_s = int(m.group(1))
    r.counters = sum(int(n) for n in re.findall(r"\((\d+) inline 8-bit counters\)", log))
    return r


def run(harness: str, work: Path, seconds: int, runs: int | None, seed_dir: Path | None = None) -> Result:
    """One bounded libFuzzer/atheris run (seeds from seed_dir, else made in work/seeds); crash
    reproducers are kept in work/crashes."""
    import time

    seed_dir = seed_dir or seeds(work)
    corpus, crash_dir = work / f"corpus_{harness}", work / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crash_dir.mkdir(parents=True, exist_ok=True)
    if harness == "c":
        cmd = [str(build_c_harness())]
        inputs = [seed_dir / "blob"]
    else:
        cmd = [sys.executable, str(HERE / "fuzz_python.py")]
        inputs = [seed_dir / "blob", seed_dir / "gguf", seed_dir / "tflite"]
    flags = [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", "-malloc_limit_mb=1024",
             "-print_final_stats=1", f"-artifact_prefix={crash_dir}/{harness}-"]
    if runs:
        flags.append(f"-runs={runs}")
    before = set(os.listdir(crash_dir))
    env = _env()
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    t0 = time.monotonic()
    log_path = work / f"{harness}.log"  # written as the run goes: `tail -f` it to watch a campaign
    with open(log_path, "w") as log_file:
        proc = subprocess.run([*cmd, *flags, str(corpus), *map(str, inputs)], stdout=log_file,
                              stderr=subprocess.STDOUT, env=env, check=False)
    log = log_path.read_text(errors="replace")
    crashes = sorted(str(crash_dir / f) for f in set(os.listdir(crash_dir)) - before if f.startswith(
        tuple(f"{harness}-{a}" for a in ARTIFACTS)))
    r = parse_log(harness, log, crashes)
    r.seconds = time.monotonic() - t0
    if proc.returncode and not crashes:  # died without an artifact: report the log tail as a failure
        r.crashes.append(f"exit {proc.returncode} without a reproducer; see {log_path}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "300")),
                    help="per harness (default FUZZ_SECONDS or 300)")
    ap.add_argument("--runs", type=int, help="stop after this many executions instead")
    ap.add_argument("--only", choices=["c", "python"])
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "fuzz")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--coverage-report", action="store_true",
                    help="no fuzzing: per-file coverage of the corpora + seeds in WORK (C: llvm-cov)")
    args = ap.parse_args()
    if args.coverage_report:
        seed_dir = args.work / "seeds"
        if args.only in (None, "c"):
            print(coverage_report([args.work / "corpus_c", seed_dir / "blob"], args.work))
        if args.only in (None, "python"):
            print(python_coverage_report([args.work / "corpus_python", *(seed_dir / k for k in ("blob", "gguf", "tflite"))]))
        return
    results = [run(h, args.work, args.seconds, args.runs) for h in ("c", "python") if args.only in (None, h)]
    for r in results:
        print(r.line())
        for c in r.crashes:
            print(f"  reproducer: {c}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    sys.exit(1 if any(r.crashes for r in results) else 0)


if __name__ == "__main__":
    main()
