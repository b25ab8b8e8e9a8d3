"""Python binding of the C runtime: ctypes over libedgeq.so, built for this host by runtimes/Makefile on
first use and cached (docs/runtime.md).

    s = Session("model.edgeq", threads=2)
    outputs = s.run([x])            # one array per graph input, batch first
    s.layer_times, s.arena_size, s.inputs, s.outputs, s.kernel_tier
"""

from __future__ import annotations

import ctypes as C
import hashlib
import json
import mmap
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from edgeq.build.builder import run_make
from edgeq.errors import BlobError, BuildError, EdgeqError

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtimes"
ABI_VERSION = 5
MESSAGE_MAX = 192
TIERS = {"auto": 0, "ref": 1, "avx2": 2, "avxvnni": 3, "neon": 4, "neon_dotprod": 5, "neon_i8mm": 6}
# Element types of activation formats (edgeq_blob.h); B1 activations are bit rows in uint32 words.
DTYPES = {1: np.float32, 2: np.float16, 3: np.int32, 4: np.int8, 5: np.uint8, 18: np.uint32}


class _Options(C.Structure):
    _fields_ = [("abi_version", C.c_uint32), ("threads", C.c_uint32), ("max_batch", C.c_uint32),
                ("tier", C.c_uint32), ("require_signature", C.c_uint32), ("has_public_key", C.c_uint32),
                ("reserved", C.c_uint32 * 2), ("public_key", C.c_uint8 * 32)]


class Sampler(C.Structure):
    """edgeq_sampler_t (edgeq.h)."""

    _fields_ = [("temperature", C.c_float), ("top_k", C.c_uint32), ("top_p", C.c_float), ("reserved", C.c_uint32),
                ("seed", C.c_uint64)]


class _Diag(C.Structure):
    _fields_ = [("status", C.c_int), ("message", C.c_char * MESSAGE_MAX)]


class _TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("index", C.c_int32), ("format", C.c_uint16), ("ndim", C.c_uint8),
                ("reserved", C.c_uint8), ("shape", C.c_int32 * 4), ("qscale", C.c_float), ("qzero", C.c_int32),
                ("sample_bytes", C.c_size_t), ("data", C.c_void_p)]


class _LayerProfile(C.Structure):
    _fields_ = [("op_index", C.c_uint32), ("op", C.c_uint16), ("reserved", C.c_uint16), ("op_name", C.c_char_p),
                ("kernel", C.c_char_p), ("ticks", C.c_uint64), ("ns", C.c_uint64)]


class _Memory(C.Structure):
    _fields_ = [("arena_bytes", C.c_size_t), ("state_bytes", C.c_size_t), ("activation_bytes", C.c_size_t)]


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: shape[0] is the batch axis (the blob stores 1)."""

    name: str
    format: int
    shape: tuple[int, ...]
    qscale: float
    qzero: int
    sample_bytes: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DTYPES[self.format])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample as this binding exchanges it (B1: words of 32 bits)."""
        if self.format == 18:
            return (self.sample_bytes // 4,)
        return self.shape[1:]


def _cache_root() -> Path:
    from edgeq.build.builder import cache_root

    return cache_root()


def _sources_key(variant: dict[str, str]) -> str:
    """Hash of the runtime sources, the make variables and the compiler: any change rebuilds."""
    from edgeq.build.builder import source_files

    cc = shutil.which(variant.get("CC", "cc"))
    if cc is None:
        raise BuildError("no C compiler (cc) found: install build-essential (tools/bootstrap.sh)")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    h = hashlib.sha256(json.dumps({"vars": variant, "cc": version}, sort_keys=True).encode())
    for path in source_files(RUNTIME_DIR):
        h.update(str(path.relative_to(RUNTIME_DIR)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build_library(sanitize: bool = False) -> Path:
    """libedgeq.so for this host (ASan+UBSan when sanitize), built once per source version.

    Builds out of tree into a fresh temp directory beside the cache entry, then renames it into
    place: concurrent builds (pytest -n 2) never share object files or see half a library.
    """
    variant = {"SANITIZE": "1"} if sanitize else {}
    key = _sources_key(variant)
    final = _cache_root() / "runtime" / f"host-{'asan' if sanitize else 'opt'}-{key}"
    lib = final / "libedgeq.so"
    if lib.is_file():
        return lib
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        run_make(RUNTIME_DIR, ["-s", f"BUILD={stage}", *[f"{k}={v}" for k, v in variant.items()],
                               str(stage / "libedgeq.so"), str(stage / "edgeq_runner")])
        try:
            stage.rename(final)
        except OSError:  # a concurrent build of the same sources won the rename: use its result
            if not lib.is_file():
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return lib


def runner_path(sanitize: bool = False) -> Path:
    """The host edgeq_runner built beside the library."""
    return build_library(sanitize).parent / "edgeq_runner"


def sanitizer_env() -> dict[str, str]:
    """Environment for a Python subprocess that loads the sanitized library (the ASan runtime must be
    the first library loaded, so it is preloaded)."""
    cc = shutil.which("cc") or "cc"
    libs = [subprocess.run([cc, f"-print-file-name={n}"], capture_output=True, text=True, check=True).stdout.strip()
            for n in ("libasan.so", "libubsan.so")]
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(libs)
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    return env


@cache
def library(sanitize: bool = False) -> C.CDLL:
    """The loaded library with its function signatures declared."""
    if sanitize and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        raise EdgeqError("sanitize=True needs the ASan runtime preloaded: run under edgeq.runtime.sanitizer_env()")
    lib = C.CDLL(str(build_library(sanitize)))
    P, S, U32 = C.c_void_p, C.c_size_t, C.c_uint32
    sigs = {
        "edgeq_abi_version": ([], U32),
        "edgeq_strerror": ([C.c_int], C.c_char_p),
        "edgeq_status_name": ([C.c_int], C.c_char_p),
        "edgeq_default_options": ([P], None),
        "edgeq_verify_signature": ([P, S, P, P], C.c_int),
        "edgeq_arena_size": ([P, S, P, C.POINTER(S), P], C.c_int),
        "edgeq_create": ([P, S, P, P, S, C.POINTER(P), P], C.c_int),
        "edgeq_destroy": ([P], None),
        "edgeq_memory": ([P, P], C.c_int),
        "edgeq_kernel_tier": ([P], C.c_char_p),
        "edgeq_num_inputs": ([P], U32),
        "edgeq_num_outputs": ([P], U32),
        "edgeq_input": ([P, U32, P], C.c_int),
        "edgeq_output": ([P, U32, P], C.c_int),
        "edgeq_run": ([P, U32], C.c_int),
        "edgeq_last_error": ([P], C.c_char_p),
        "edgeq_num_layers": ([P], U32),
        "edgeq_layer_profile": ([P, U32, P], C.c_int),
        "edgeq_metadata": ([P, C.POINTER(S)], C.c_void_p),
        "edgeq_sample": ([P, U32, P, C.c_uint64, C.POINTER(C.c_int32)], C.c_int),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    if lib.edgeq_abi_version() != ABI_VERSION:
        raise BuildError(f"libedgeq ABI {lib.edgeq_abi_version()} differs from the binding's {ABI_VERSION}")
    return lib


class RuntimeFailure(EdgeqError):
    """The runtime refused a call (3xx status): bad batch, arena, threads or tier."""


def _error(status: int, message: str, path: Path) -> EdgeqError:
    """BlobError for blob and graph faults (1xx, 2xx), RuntimeFailure otherwise; `.status` keeps the code."""
    cls = BlobError if status < 300 else RuntimeFailure
    err = cls(f"{path}: {message}")
    err.status = status
    return err


def verify_signature(blob_path: str | os.PathLike, public_key: str | os.PathLike | bytes,
                     sanitize: bool = False) -> None:
    """The C runtime's edgeq_verify_signature (what a firmware's VERIFY step calls); raises BlobError."""
    from edgeq.blob.sign import load_public_key

    path = Path(blob_path)
    key = (C.c_uint8 * 32)(*load_public_key(public_key))
    data = np.fromfile(path, np.uint8)
    buf = np.zeros(data.size + 64, np.uint8)
    at = -buf.ctypes.data % 64
    buf[at : at + data.size] = data
    diag = _Diag()
    if library(sanitize).edgeq_verify_signature(buf.ctypes.data + at, data.size, key, C.byref(diag)):
        raise _error(diag.status, diag.message.decode(errors="replace"), path)


class Session:
    """A blob loaded in the C runtime: zero-copy over an mmap of the file; one arena allocated here
    (activations for `max_batch` samples), none after. Larger batches run in chunks."""

    def __init__(self, blob_path: str | os.PathLike, threads: int = 1, sanitize: bool = False, tier: str = "auto",
                 max_batch: int = 1, public_key: str | os.PathLike | bytes | None = None,
                 require_signature: bool = False):
        """public_key (raw 32 bytes or a .pub/PEM file): a signed blob must verify against it in the C
        runtime; require_signature: an unsigned blob is refused too (docs/signing.md)."""
        if tier not in TIERS:
            raise EdgeqError(f"unknown kernel tier '{tier}'; choose from {', '.join(TIERS)}")
        self.path = Path(blob_path)
        lib = self._lib = library(sanitize)
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise BlobError(f"{self.path}: cannot map ({e})") from None
        self._blob = np.frombuffer(self._map, np.uint8)
        opt = _Options()
        lib.edgeq_default_options(C.byref(opt))
        opt.threads, opt.max_batch, opt.tier = int(threads), int(max_batch), TIERS[tier]
        if public_key is not None:
            from edgeq.blob.sign import load_public_key

            opt.public_key[:] = load_public_key(public_key)
            opt.has_public_key = 1
        opt.require_signature = int(require_signature)
        diag, need = _Diag(), C.c_size_t()
        ptr, size = self._blob.ctypes.data, self._blob.size
        if lib.edgeq_arena_size(ptr, size, C.byref(opt), C.byref(need), C.byref(diag)):
            raise _error(diag.status, diag.message.decode(errors="replace"), self.path)
        self._arena = np.zeros(need.value + 64, np.uint8)
        at = -self._arena.ctypes.data % 64
        model = C.c_void_p()
        if lib.edgeq_create(ptr, size, C.byref(opt), self._arena.ctypes.data + at, need.value, C.byref(model),
                            C.byref(diag)):
            raise _error(diag.status, diag.message.decode(errors="replace"), self.path)
        self._model = model
        self.threads, self.max_batch = int(threads), int(max_batch)
        self.inputs = [self._info(lib.edgeq_input, i) for i in range(lib.edgeq_num_inputs(model))]
        self.outputs = [self._info(lib.edgeq_output, i) for i in range(lib.edgeq_num_outputs(model))]
        self.layer_times: list[tuple[int, str, str, float]] = []
        self._graph = None

    def __del__(self) -> None:
        if getattr(self, "_model", None):
            self._lib.edgeq_destroy(self._model)
            self._model = None

    def _info(self, fn, i: int) -> TensorInfo:
        raw = _TensorInfo()
        fn(self._model, i, C.byref(raw))
        return TensorInfo(raw.name.decode(), raw.format, tuple(raw.shape[: raw.ndim]), raw.qscale, raw.qzero,
                          raw.sample_bytes)

    def _buffer(self, fn, i: int) -> np.ndarray:
        raw = _TensorInfo()
        fn(self._model, i, C.byref(raw))
        return np.ctypeslib.as_array(C.cast(raw.data, C.POINTER(C.c_uint8)), (raw.sample_bytes * self.max_batch,))

    @property
    def graph(self):
        """The blob's graph as the Python reader sees it (edgeq.blob.read_blob)."""
        if self._graph is None:
            from edgeq.blob import read_blob

            self._graph = read_blob(self.path).graph
        return self._graph

    @property
    def metadata(self) -> dict:
        """The blob's METADATA section, read in place by the C runtime."""
        size = C.c_size_t()
        ptr = self._lib.edgeq_metadata(self._model, C.byref(size))
        return json.loads(C.string_at(ptr, size.value).decode()) if ptr and size.value else {}

    def sample(self, logits: np.ndarray, sampler: Sampler, position: int) -> int:
        """edgeq_sample on one row of logits."""
        row = np.ascontiguousarray(logits, np.float32)
        token = C.c_int32()
        status = self._lib.edgeq_sample(row.ctypes.data, row.size, C.byref(sampler), position, C.byref(token))
        if status:
            raise RuntimeFailure(f"edgeq_sample refused its arguments (status {status})")
        return token.value

    @property
    def kernel_tier(self) -> str:
        return self._lib.edgeq_kernel_tier(self._model).decode()

    @property
    def memory(self) -> dict[str, int]:
        m = _Memory()
        self._lib.edgeq_memory(self._model, C.byref(m))
        return {"arena_bytes": m.arena_bytes, "state_bytes": m.state_bytes, "activation_bytes": m.activation_bytes}

    @property
    def arena_size(self) -> int:
        """Bytes of planned activations and kernel scratch (liveness-shared), for max_batch samples."""
        return self.memory["activation_bytes"]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Runs a batch (axis 0 of every input) in chunks of max_batch; returns one array per graph output."""
        if len(inputs) != len(self.inputs):
            raise EdgeqError(f"model takes {len(self.inputs)} input(s), got {len(inputs)}")
        arrays = []
        for info, x in zip(self.inputs, inputs):
            x = np.asarray(x)
            want = info.sample_shape
            if x.ndim == len(want):
                x = x[None]
            if tuple(x.shape[1:]) != tuple(want):
                raise EdgeqError(f"input {info.name}: expected shape [N, {', '.join(map(str, want))}], got {list(x.shape)}")
            arrays.append(np.ascontiguousarray(x, info.dtype))
        n = len(arrays[0]) if arrays else 1
        if any(len(a) != n for a in arrays):
            raise EdgeqError("inputs disagree on the batch size")
        results = [np.empty((n, *o.sample_shape), o.dtype) for o in self.outputs]
        times: dict[int, list] = {}
        for start in range(0, n, self.max_batch):
            count = min(self.max_batch, n - start)
            for i, a in enumerate(arrays):
                buf = self._buffer(self._lib.edgeq_input, i)
                buf[: a[start : start + count].nbytes] = a[start : start + count].reshape(-1).view(np.uint8)
            status = self._lib.edgeq_run(self._model, count)
            if status:
                raise _error(status, self._lib.edgeq_last_error(self._model).decode(errors="replace"), self.path)
            for k, out in enumerate(results):
                buf = self._buffer(self._lib.edgeq_output, k)
                out[start : start + count].reshape(-1).view(np.uint8)[:] = buf[: out[start : start + count].nbytes]
            self._collect(times)
        self.layer_times = [tuple(v) for v in times.values()]
        return results

    def _collect(self, times: dict[int, list]) -> None:
        """Adds this run's per-layer seconds to `times` (summed over chunks)."""
        p = _LayerProfile()
        for k in range(self._lib.edgeq_num_layers(self._model)):
            self._lib.edgeq_layer_profile(self._model, k, C.byref(p))
            entry = times.setdefault(k, [k, p.op_name.decode(), p.kernel.decode(), 0.0])
            entry[3] += p.ns / 1e9
