"""Python binding of the C runtime (ctypes over libedgeq.so, built for the host on first use and cached).

    s = Session("model.edgeq"); outputs = s.run([x]); s.layer_times; s.arena_size
"""

from __future__ import annotations

import ctypes as C
import mmap
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import BlobError, EdgeqError


class _LayerTime(C.Structure):
    _fields_ = [("op_index", C.c_int32), ("op", C.c_uint16), ("kernel", C.c_char_p), ("ns", C.c_uint64)]


_lib = None


def library() -> C.CDLL:
    """libedgeq.so for this host, built once per source version by the project's own Makefile."""
    global _lib
    if _lib is None:
        from edgeq.build import build_runtime
        from edgeq.targets.registry import get_target

        build = build_runtime(get_target("host"))
        so = next((p for p in build.libraries if p.name == "libedgeq.so"), build.directory / "libedgeq.so")
        lib = C.CDLL(str(so))
        lib.edgeq_work_size.argtypes = [C.c_void_p, C.c_size_t, C.POINTER(C.c_size_t)]
        lib.edgeq_load.argtypes = [C.c_void_p, C.c_size_t, C.c_void_p, C.c_size_t, C.POINTER(C.c_void_p)]
        lib.edgeq_arena_size.argtypes = [C.c_void_p]
        lib.edgeq_arena_size.restype = C.c_size_t
        lib.edgeq_num_ops.argtypes = [C.c_void_p]
        lib.edgeq_input.argtypes = lib.edgeq_output.argtypes = [C.c_void_p, C.c_int, C.POINTER(C.c_size_t)]
        lib.edgeq_input.restype = lib.edgeq_output.restype = C.POINTER(C.c_float)
        lib.edgeq_run.argtypes = [C.c_void_p]
        lib.edgeq_profile.argtypes = [C.c_void_p]
        lib.edgeq_profile.restype = C.POINTER(_LayerTime)
        lib.edgeq_strerror.restype = lib.edgeq_last_error.restype = C.c_char_p
        lib.edgeq_last_error.argtypes = [C.c_void_p]
        _lib = lib
    return _lib


class Session:
    """A loaded blob: zero-copy over an mmap of the file, one work buffer allocated here, none after."""

    def __init__(self, blob_path: str | Path, threads: int = 1):
        if threads != 1:
            raise EdgeqError("this runtime build is single-threaded: use threads=1")
        lib = library()
        path = Path(blob_path)
        try:
            with open(path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise BlobError(f"{path}: cannot map ({e})") from None
        self._blob = np.frombuffer(self._map, np.uint8)
        ptr, size = self._blob.ctypes.data, self._blob.size
        need = C.c_size_t()
        status = lib.edgeq_work_size(ptr, size, C.byref(need))
        if status:
            raise BlobError(f"{path}: {lib.edgeq_strerror(status).decode()}: {lib.edgeq_last_error(None).decode()}")
        self._work = np.zeros(need.value, np.uint8)
        model = C.c_void_p()
        status = lib.edgeq_load(ptr, size, self._work.ctypes.data, need.value, C.byref(model))
        if status:
            raise BlobError(f"{path}: {lib.edgeq_strerror(status).decode()}: {lib.edgeq_last_error(None).decode()}")
        self._lib, self._model, self.path = lib, model, path
        from edgeq.blob import read_blob

        self.graph = read_blob(path).graph
        self.layer_times: list[tuple[int, str, str, float]] = []

    @property
    def arena_size(self) -> int:
        return int(self._lib.edgeq_arena_size(self._model))

    def _io(self, fn, i: int) -> np.ndarray:
        count = C.c_size_t()
        ptr = fn(self._model, i, C.byref(count))
        if not ptr:
            raise EdgeqError("graph input/output is not float32: not supported by this binding")
        return np.ctypeslib.as_array(ptr, shape=(count.value,))

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Runs a batch (axis 0) sample by sample; returns one stacked array per graph output."""
        gin = self.graph.tensors[self.graph.inputs[0]]
        gout = self.graph.tensors[self.graph.outputs[0]]
        x = np.asarray(inputs[0], np.float32).reshape((-1,) + tuple(gin.shape[1:]))
        outs = []
        for sample in x:
            self._io(self._lib.edgeq_input, 0)[:] = sample.ravel()
            self._lib.edgeq_run(self._model)
            outs.append(self._io(self._lib.edgeq_output, 0).copy())
        prof = self._lib.edgeq_profile(self._model)
        self.layer_times = [(prof[k].op_index, L.OP_NAMES.get(prof[k].op, "?"), prof[k].kernel.decode(),
                             prof[k].ns / 1e9) for k in range(self._lib.edgeq_num_ops(self._model))]
        return [np.stack(outs).reshape((len(outs),) + tuple(gout.shape[1:]))]
