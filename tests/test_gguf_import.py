"""`edgeq pack model.gguf`: GGUF files written by gguf-py's GGUFWriter repack into edgeq formats
whose `edgeq dequant` equals gguf.quants.dequantize exactly; unsupported types are listed in one
error; malformed and hostile files are refused with one clear line (never a traceback)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q

from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.errors import EdgeqError
from edgeq.importers.gguf_import import from_gguf_file

# name, type, numpy shape: odd row counts, a 3-D and a 1-D tensor
TENSORS = [
    ("blk.0.ffn_up.weight", Q.TQ2_0, (7, 512)),
    ("blk.0.ffn_down.weight", Q.TQ1_0, (3, 5, 256)),
    ("blk.0.attn_q.weight", Q.Q4_0, (9, 96)),
    ("blk.0.attn_k.weight", Q.Q4_0, (1, 32)),
    ("blk.0.attn_v.weight", Q.Q8_0, (5, 64)),
    ("token_embd.weight", Q.F16, (3, 7)),
    ("output_norm.weight", Q.F32, (11,)),
]


def write_gguf(path, tensors, name: str = "tiny-ternary", extra_types: dict | None = None) -> dict[str, np.ndarray]:
    """A GGUF through gguf-py's writer; returns each tensor's raw GGUF data."""
    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    raws = {}
    for tname, qtype, shape in tensors:
        x = (rng.standard_normal(shape) * rng.uniform(0.05, 2)).astype(np.float32)
        if qtype == Q.F32:
            raw = x
        elif qtype == Q.F16:
            raw = x.astype(np.float16)
        elif qtype in (extra_types or {}):
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = rng.integers(0, 256, (*shape[:-1], shape[-1] // block * size), dtype=np.uint8)
        else:
            raw = gguf.quants.quantize(x, qtype)
        w.add_tensor(tname, raw, raw_dtype=qtype)
        raws[tname] = raw
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return raws


def test_pack_then_dequant_equals_gguf_dequantize(tmp_path):
    src, out = tmp_path / "tiny.gguf", tmp_path / "tiny.edgeq"
    raws = write_gguf(src, TENSORS)
    runner = CliRunner()
    res = runner.invoke(main, ["pack", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Q8_0 tensor(s) requantized to i8" in res.output  # said, not hidden
    blob = read_blob(out)
    assert blob.graph.ops == []
    meta = blob.metadata["gguf"]
    assert (meta["architecture"], meta["name"]) == ("llama", "tiny-ternary")
    formats = {t["name"]: t["format"] for t in json.loads(runner.invoke(main, ["inspect", str(out), "--json"]).output)
               ["tensors"]}
    assert formats == {"blk.0.ffn_up.weight": "t2", "blk.0.ffn_down.weight": "t158", "blk.0.attn_q.weight": "q4",
                       "blk.0.attn_k.weight": "q4", "blk.0.attn_v.weight": "i8", "token_embd.weight": "f16",
                       "output_norm.weight": "f32"}
    for name, qtype, shape in TENSORS:
        npy = tmp_path / f"{name}.npy"
        res = runner.invoke(main, ["dequant", str(out), name, "-o", str(npy)])
        assert res.exit_code == 0, res.output
        got = np.load(npy)
        want = gguf.quants.dequantize(raws[name], qtype).astype(np.float32)
        assert meta["tensors"][name]["dims"] == list(reversed(shape))
        if qtype == Q.Q8_0:  # requantized per row: the documented bound, and the measured error recorded
            err = np.abs(got - want).max()
            assert 0 < err <= np.abs(want).max(axis=1).max() / 254 * 1.0001
            assert meta["tensors"][name]["max_abs_error"] == pytest.approx(err)
            assert meta["tensors"][name]["lossless"] is False
        else:  # bit for bit, quantized tensors as [rows, cols] with leading dims flattened
            assert got.reshape(want.shape).tobytes() == want.tobytes(), name
    # the repacked quantized tensors keep GGUF's fp16 scales bit for bit
    t2 = next(t for t in blob.graph.tensors if t.name == "blk.0.ffn_up.weight").packed
    d = raws["blk.0.ffn_up.weight"].reshape(7, 2, 66)[:, :, 64:66].copy().view("<f2").reshape(7, 2)
    assert t2.scales.tobytes() == d.tobytes()


def test_unsupported_types_are_listed_in_one_error(tmp_path):
    src = tmp_path / "mixed.gguf"
    extra = {Q.Q4_K: True, Q.Q6_K: True}
    write_gguf(src, [("ok", Q.TQ2_0, (2, 256)), ("blk.0.a", Q.Q4_K, (3, 256)), ("blk.0.b", Q.Q6_K, (2, 256)),
                     ("blk.0.c", Q.Q5_0, (2, 64))], extra_types=extra)
    res = CliRunner().invoke(main, ["pack", str(src), "-o", str(tmp_path / "x.edgeq")])
    assert res.exit_code == 2
    line = res.output.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "3 tensor(s)" in line and "blk.0.a: Q4_K, blk.0.b: Q6_K, blk.0.c: Q5_0" in line
    assert "supported: TQ1_0, TQ2_0, Q4_0, F32, F16, BF16, Q8_0" in line
    assert not (tmp_path / "x.edgeq").exists()


def _header(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def _s(text: str | bytes, length: int | None = None) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw) if length is None else length) + raw


def _info(name: str, dims, qtype: int = 0, offset: int = 0, n_dims: int | None = None) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return _s(name) + struct.pack("<I", n) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", qtype,
                                                                                                         offset)


def _file(infos: list[bytes], data: bytes, kvs: bytes = b"", n_kv: int = 0, n_tensors: int | None = None) -> bytes:
    head = _header(len(infos) if n_tensors is None else n_tensors, n_kv) + kvs + b"".join(infos)
    return head + b"\0" * (-len(head) % 32) + data


GOOD = _file([_info("w", [4, 2])], np.arange(8, dtype=np.float32).tobytes())
KV_U32 = struct.pack("<I", 4)

MALFORMED = {
    "empty": (b"", "truncated (0 bytes"),
    "truncated header": (GOOD[:20], "truncated (20 bytes"),
    "bad magic": (b"GGML" + GOOD[4:], "magic is b'GGML'"),
    "version 1": (_header(1, 0, version=1) + GOOD[24:], "version 1 is not supported"),
    "big-endian": (_header(1, 0, version=3 << 24) + GOOD[24:], "big-endian"),
    "absurd tensor count": (_header(1 << 60, 0) + GOOD[24:], "tensor count 1152921504606846976"),
    "absurd kv count": (_header(1, 1 << 62) + GOOD[24:], "metadata count 4611686018427387904"),
    "key length past eof": (_file([], b"", _s("general.name", 1 << 40) + b"x" * 20, 1), "needs 1099511627776 bytes"),
    "array count 2^62": (_file([], b"", _s("a") + struct.pack("<IIQ", 9, 4, 1 << 62) + b"\0" * 40, 1),
                         "element count 4611686018427387904"),
    "string array count": (_file([], b"", _s("a") + struct.pack("<IIQ", 9, 8, 1 << 40), 1), "element count"),
    "deep nesting": (_file([], b"", _s("a") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 6 + b"\0" * 64, 1),
                     "nested deeper"),
    "unknown value type": (_file([], b"", _s("a") + struct.pack("<I", 77) + b"\0" * 16, 1), "unknown value type 77"),
    "non-utf8 key": (_file([], b"", _s(b"\xff\xfe") + KV_U32 + b"\0" * 16, 1), "is not UTF-8"),
    "duplicate key": (_file([], b"", (_s("k") + KV_U32 + b"\1\0\0\0") * 2, 2), "'k' appears twice"),
    "alignment not power of two": (_file([], b"", _s("general.alignment") + KV_U32 + struct.pack("<I", 48), 1),
                                   "not a power of two"),
    "alignment wrong type": (_file([], b"", _s("general.alignment") + struct.pack("<IQ", 10, 32), 1),
                             "expected uint32"),
    "5 dims": (_file([_info("w", [2, 1, 1, 1, 1])], b"\0" * 32), "has 5 dims"),
    "0 dims": (_file([_info("w", [])], b"\0" * 32), "has 0 dims"),
    "absurd dims": (_file([_info("w", [1 << 62, 1 << 62])], b"\0" * 32), "dims [4611686018427387904"),
    "zero dim": (_file([_info("w", [4, 0])], b"\0" * 32), "dims [4, 0]"),
    "n_dims past eof": (_file([_info("w", [4], n_dims=4)], b""), "needs 8 bytes"),
    "unknown type": (_file([_info("w", [32], qtype=99)], b"\0" * 128), "unknown GGML type id 99"),
    "partial block": (_file([_info("w", [100], qtype=35)], b"\0" * 128), "whole blocks of 256"),
    "misaligned offset": (_file([_info("w", [4], offset=4)], b"\0" * 64), "not 32-byte aligned"),
    "data past eof": (_file([_info("w", [4, 2], offset=1 << 40)], b"\0" * 32), "lies outside the file"),
    "truncated data": (GOOD[:-4], "lies outside the file"),
    "duplicate tensor": (_file([_info("w", [4]), _info("w", [4])], b"\0" * 16), "'w' appears twice"),
    "no tensors": (_file([], b""), "holds no tensors"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_gguf_is_refused_clearly(tmp_path, case):
    data, expected = MALFORMED[case]
    src = tmp_path / "bad.gguf"
    src.write_bytes(data)
    with pytest.raises(EdgeqError) as err:
        from_gguf_file(src)
    assert expected in str(err.value), str(err.value)
    res = CliRunner().invoke(main, ["pack", str(src), "-o", str(tmp_path / "x.edgeq")])
    assert res.exit_code == 2 and res.output.startswith("error: ") and res.exception.__class__ is SystemExit


def test_the_hand_built_file_is_valid(tmp_path):
    """The base the corruptions start from is a good file (so each case tests only its fault)."""
    p = tmp_path / "good.gguf"
    p.write_bytes(GOOD)
    g = from_gguf_file(p)
    assert np.array_equal(g.tensors[0].array, np.arange(8, dtype=np.float32).reshape(2, 4))


def test_random_corruption_never_escapes_as_a_traceback(tmp_path):
    """Byte flips and truncations of a real file: either it imports or EdgeqError, nothing else."""
    src = tmp_path / "tiny.gguf"
    write_gguf(src, TENSORS[:3])
    good = src.read_bytes()
    head = 24 + 400  # flips concentrated on the header, metadata and tensor infos
    rng = np.random.default_rng(5)
    bad = tmp_path / "bad.gguf"
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(good)
        if rng.random() < 0.2:
            data = data[: rng.integers(0, len(good))]
        else:
            for at in rng.integers(0, min(head, len(data)), rng.integers(1, 4)):
                data[at] = rng.integers(0, 256)
        bad.write_bytes(bytes(data))
        try:
            from_gguf_file(bad)
            outcomes["ok"] += 1
        except EdgeqError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50
