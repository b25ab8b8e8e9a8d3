"""Builds the C runtime for a target with its toolchain, once per (target, sources, flags, compiler).

With lib=True it builds instead the library an app links (docs/android.md): make FREESTANDING=1 lib,
a libedgeq.so that links no C library (no NEEDED entries, so one file loads under bionic as under
glibc) with the platform hooks handed over at run time, plus the public headers; no runner.

The runtime sources are copied into a fresh directory under the cache and `make` runs there with
the target's make variables (edgeq.targets.neon), so concurrent builds for different targets never
share object files and a finished build is published by one atomic rename. The cache key hashes
the sources, the make variables and the compiler's version line: edit any of them and it rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeq.errors import BuildError, EdgeqError
from edgeq.targets import neon
from edgeq.targets.registry import Target

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtimes"
RUNNER = "edgeq_runner"
LIBRARIES = ("libedgeq.a", "libedgeq.so")
# Architectures whose compiler inlines every libm call the runtime makes except expf (aarch64: rintf
# is one frintx), so the freestanding library needs only runtimes/src/freestanding.c.
FREESTANDING_ARCHES = ("aarch64",)
IGNORED_DIRS = {"build", "__pycache__", ".git"}
IGNORED_SUFFIXES = {".o", ".a", ".so", ".d", ".elf", ".bin"}
BUILD_TIMEOUT_S = 600


def cache_root() -> Path:
    """EDGEQ_CACHE_DIR, else $XDG_CACHE_HOME/edgeq, else ~/.cache/edgeq."""
    if os.environ.get("EDGEQ_CACHE_DIR"):
        return Path(os.environ["EDGEQ_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "edgeq"


def toolchain(cc: str, package: str) -> tuple[str, str]:
    """(path, version line) of a compiler; BuildError naming the apt package when it is missing."""
    path = shutil.which(cc)
    if path is None:
        raise BuildError(f"compiler {cc} not found; install it with `sudo apt-get install {package}` "
                         f"(or run tools/bootstrap.sh)")
    out = subprocess.run([path, "--version"], check=False, capture_output=True, text=True, timeout=60)
    return path, (out.stdout.splitlines() or [""])[0]


def source_files(root: Path) -> list[Path]:
    """The runtime's source files (no build products), sorted for a stable hash."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        files += [Path(dirpath) / f for f in sorted(filenames) if Path(f).suffix not in IGNORED_SUFFIXES]
    return files


def build_key(target: Target, make_vars: dict[str, str], version: str, source: Path) -> str:
    """Hash of everything the build output depends on."""
    h = hashlib.sha256()
    h.update(json.dumps({"target": target.id, "vars": make_vars, "cc": version}, sort_keys=True).encode())
    for path in source_files(source):
        h.update(str(path.relative_to(source)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class BuildResult:
    """Where a target's runtime build lives, and whether it came from the cache."""

    target: str
    directory: Path
    runner: Path | None
    libraries: tuple[Path, ...]
    cached: bool
    config: neon.CpuBuildConfig

    def to_json(self) -> dict:
        return {"target": self.target, "directory": str(self.directory),
                "runner": str(self.runner) if self.runner else None,
                "libraries": [str(p) for p in self.libraries], "cached": self.cached,
                "make_vars": self.config.make_vars()}


def _find(tree: Path, name: str) -> Path | None:
    hits = sorted(tree.rglob(name), key=lambda p: len(p.parts))
    return hits[0] if hits else None


def run_make(directory: Path, args: list[str]) -> None:
    """`make -C directory -jN args...`; a failure is one BuildError with the output's tail."""
    cmd = ["make", "-C", str(directory), f"-j{os.cpu_count() or 1}", *args]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError(f"runtime build timed out after {BUILD_TIMEOUT_S} s") from None
    if proc.returncode:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BuildError(f"runtime build failed (make exited {proc.returncode}):\n{tail}")


def copy_out(final: Path, out: str | os.PathLike | None, names: list[str]) -> Path:
    """The cached build directory, or (with `out`) a directory holding copies of its files `names`."""
    if out is None:
        return final
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise EdgeqError(f"{directory}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(final / name, directory / name)
    return directory


def build_runtime(target: Target, out: Path | None = None, source: Path = RUNTIME_DIR,
                  lib: bool = False) -> BuildResult:
    """Builds (or reuses) libedgeq + edgeq_runner for `target` (lib: the freestanding app library and
    headers); copies them into `out` when given."""
    cfg = neon.config(target)
    if lib and cfg.arch not in FREESTANDING_ARCHES:
        raise EdgeqError(f"--lib builds the freestanding library for {', '.join(FREESTANDING_ARCHES)}; "
                         f"target {target.id} is {cfg.arch}")
    _, version = toolchain(cfg.cc, cfg.package)
    if not (source / "Makefile").is_file():
        raise BuildError(f"{source}/Makefile not found: the C runtime sources are missing")
    make_vars = cfg.make_vars() | ({"FREESTANDING": "1"} if lib else {})
    key = build_key(target, make_vars, version, source)
    final = cache_root() / "build" / f"{target.id}-{'lib-' if lib else ''}{key}"
    product = "libedgeq.so" if lib else RUNNER
    cached = (final / product).is_file()
    if not cached:
        final.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.id}-", dir=final.parent))
        try:
            work = stage / "src"
            shutil.copytree(source, work, ignore=shutil.ignore_patterns(*IGNORED_DIRS, "*.o", "*.a", "*.so", "*.d"))
            run_make(work, [f"{k}={v}" for k, v in make_vars.items()] + (["lib"] if lib else []))
            built = _find(work, product)
            if built is None:
                raise BuildError(f"runtime build finished but produced no {product}")
            shutil.copy2(built, stage / product)
            for name in LIBRARIES:
                found = _find(work, name)
                if found is not None:
                    shutil.copy2(found, stage / name)
            if lib:
                shutil.copytree(work / "include", stage / "include")
            (stage / "config.mk").write_text(cfg.config_mk())
            (stage / "toolchain.cmake").write_text(cfg.cmake_toolchain())
            try:
                stage.rename(final)
            except OSError:  # a concurrent build of the same key won; use its result
                if not (final / product).is_file():
                    raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    directory = copy_out(final, out, [item.name for item in final.iterdir() if item.is_file()])
    if out is not None and lib:
        shutil.copytree(final / "include", directory / "include", dirs_exist_ok=True)
    libs = tuple(directory / name for name in LIBRARIES if (directory / name).is_file())
    return BuildResult(target.id, directory, None if lib else directory / RUNNER, libs, cached, cfg)
