"""Bit formats: round trips on random shapes, the exact bit orders of docs/formats.md, region layout,
zero-copy reading and every malformed payload -> BlobError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.errors import BlobError
from edgeq.formats import (
    FORMATS,
    PackedTensor,
    by_id,
    ids,
    pack_binary_activations,
    resolve,
    unpack_binary_activations,
)

SETTINGS = settings(max_examples=60, deadline=None)


def _random_values(fmt, rng, rows, cols, zeros, block):
    if fmt.name == "b1":
        return np.where(rng.random((rows, cols)) < 0.5, -1, 1).astype(np.int8)
    if zeros is not None:  # asymmetric q4: u = q + z in 0..15
        z = np.repeat(zeros.astype(np.int16), block, axis=1)[:, :cols]
        return (rng.integers(0, 16, (rows, cols)) - z).astype(np.int8)
    return rng.integers(fmt.lo, fmt.hi + 1, (rows, cols)).astype(np.int8)


@st.composite
def packed_cases(draw):
    name = draw(st.sampled_from(sorted(FORMATS)))
    fmt = FORMATS[name]
    rows = draw(st.integers(1, 9))
    cols = draw(st.one_of(st.just(1), st.integers(1, 700)))
    block = draw(st.sampled_from(fmt.blocks))
    kind = draw(st.sampled_from([k for k in fmt.scale_kinds if not fmt.block_problem(block, k)]))
    asym = fmt.zero_points and draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nb = -(-cols // block)
    zeros = rng.integers(0, 16, (rows, nb)).astype(np.uint8) if asym else None
    if kind == ids.SCALE_ROW:
        scales = rng.standard_normal(rows).astype(np.float32)
    else:
        scales = rng.standard_normal((rows, nb)).astype(np.float16)
    values = _random_values(fmt, rng, rows, cols, zeros, block)
    return fmt, values, scales, zeros, kind, block


def _expected_dequant(values, scales, kind, block):
    cols = values.shape[1]
    if kind == ids.SCALE_ROW:
        return values.astype(np.float32) * scales[:, None]
    per_col = np.repeat(scales.astype(np.float32), block, axis=1)[:, :cols]
    return values.astype(np.float32) * per_col


def _align(n):
    return -(-n // 64) * 64


@SETTINGS
@given(packed_cases())
def test_pack_round_trip(case):
    fmt, values, scales, zeros, kind, block = case
    rows, cols = values.shape
    p = fmt.pack(values, scales, zeros, scale_kind=kind, block=block)
    assert (p.format, p.name, p.rows, p.cols, p.block, p.scale_kind) == (fmt.id, fmt.name, rows, cols, block, kind)
    ints = p.int_values()
    assert ints.dtype == np.int8 and ints.shape == (rows, p.padded_cols)
    assert np.array_equal(ints[:, :cols], values)
    assert not ints[:, cols:].any()
    assert np.array_equal(p.scales, scales.astype(p.scales.dtype))
    assert (p.zeros is None) == (zeros is None) and (zeros is None or np.array_equal(p.zeros, zeros))
    assert np.array_equal(fmt.unpack_codes(p.codes, block).shape, (rows, p.padded_cols))
    deq = p.dequantize()
    assert deq.dtype == np.float32 and deq.shape == (rows, cols)
    assert np.array_equal(deq, _expected_dequant(values, scales, kind, block))
    # payload: codes, then scales, then zeros, each 64-byte aligned; bits/weight counts all of it
    codes_size = rows * p.n_blocks * fmt.code_bytes(block)
    scales_size = p.scales.nbytes
    assert p.scales_at == _align(codes_size)
    end = p.scales_at + scales_size
    if zeros is not None:
        assert p.zeros_at == _align(end)
        end = p.zeros_at + zeros.size
    else:
        assert p.zeros_at == 0
    assert p.nbytes == end
    assert p.bits_per_weight == end * 8 / (rows * cols)
    data, scales_at, zeros_at = p.payload()
    assert len(data) == end and (scales_at, zeros_at) == (p.scales_at, p.zeros_at)
    q = PackedTensor.from_payload(fmt, rows, cols, block, kind, data, scales_at, zeros_at)
    assert np.array_equal(q.int_values(), ints) and np.array_equal(q.dequantize(), deq)
    assert [r.offset for r in q.regions()] == [r.offset for r in p.regions()]


NOMINAL = [  # (format, scale kind, block, zero points, nominal bpw for the padded shape)
    ("t2", ids.SCALE_BLOCK, 256, False, lambda pc: 2.0625),
    ("t2", ids.SCALE_ROW, 256, False, lambda pc: 2 + 32 / pc),
    ("t158", ids.SCALE_BLOCK, 256, False, lambda pc: 1.6875),
    ("t158", ids.SCALE_ROW, 256, False, lambda pc: 1.625 + 32 / pc),
    ("b1", ids.SCALE_ROW, 64, False, lambda pc: 1 + 32 / pc),
    ("q4", ids.SCALE_BLOCK, 32, False, lambda pc: 4.5),
    ("q4", ids.SCALE_BLOCK, 64, False, lambda pc: 4.25),
    ("q4", ids.SCALE_BLOCK, 128, False, lambda pc: 4.125),
    ("q4", ids.SCALE_BLOCK, 32, True, lambda pc: 4.75),
    ("q4", ids.SCALE_BLOCK, 128, True, lambda pc: 4.1875),
    ("i8", ids.SCALE_ROW, 16, False, lambda pc: 8 + 32 / pc),
]


@pytest.mark.parametrize("name,kind,block,asym,nominal", NOMINAL)
@pytest.mark.parametrize("rows,cols", [(64, 1000), (33, 4100), (1, 65536), (300, 300)])
def test_bits_per_weight_near_nominal(name, kind, block, asym, nominal, rows, cols):
    fmt = FORMATS[name]
    rng = np.random.default_rng(0)
    nb = -(-cols // block)
    zeros = np.full((rows, nb), 8, np.uint8) if asym else None
    scales = np.ones(rows, np.float32) if kind == ids.SCALE_ROW else np.ones((rows, nb), np.float16)
    p = fmt.pack(_random_values(fmt, rng, rows, cols, zeros, block), scales, zeros, scale_kind=kind, block=block)
    padded_bpw = p.nbytes * 8 / (rows * p.padded_cols)
    assert abs(padded_bpw - nominal(p.padded_cols)) / nominal(p.padded_cols) < 0.05
    assert p.bits_per_weight == pytest.approx(padded_bpw * p.padded_cols / cols)


# ---- exact bit orders, computed by hand from docs/formats.md -------------------------------------

def _block_codes(name, x, scale_kind=ids.SCALE_ROW, block=None):
    fmt = FORMATS[name]
    x = np.asarray(x, np.int8)[None, :]
    block = block or fmt.block
    scales = np.ones(1, np.float32) if scale_kind == ids.SCALE_ROW else np.ones((1, x.shape[1] // block), np.float16)
    return fmt.pack(x, scales, scale_kind=scale_kind, block=block).codes[0]


def test_t2_bit_order():
    # byte 32h + m holds the code (x + 1) of x[128h + 32l + m] in bits 2l..2l+1
    x = np.zeros(256, np.int8)
    x[128 * 1 + 32 * 2 + 5] = 1   # h=1, l=2, m=5: code 2 in bits 4..5 of byte 37
    x[0] = -1                     # h=0, l=0, m=0: code 0 in bits 0..1 of byte 0
    x[32 * 3 + 31] = -1           # h=0, l=3, m=31: code 0 in bits 6..7 of byte 31
    codes = _block_codes("t2", x)
    expected = np.full(64, 0b01010101, np.uint8)
    expected[37] = 0b01_10_01_01
    expected[0] = 0b01_01_01_00
    expected[31] = 0b00_01_01_01
    assert np.array_equal(codes, expected)
    # code 3 (never written by edgeq, allowed in GGUF) means +2
    p = FORMATS["t2"].pack(np.zeros((1, 256), np.int8), np.ones(1, np.float32))
    p.codes[0, 0] = 0b11
    assert p.int_values()[0, 0] == 2


def test_t158_bit_order():
    def stored(trits):  # v = sum t[n] * 3^(4-n), byte = ceil(v * 256 / 243)
        v = sum(t * 3 ** (4 - n) for n, t in enumerate(trits))
        return -(-v * 256 // 243)

    x = np.zeros(256, np.int8)
    x[3 + 32 * 2] = 1       # byte 3, trit n=2 (weight 9)
    x[160 + 7 + 16 * 4] = -1  # byte 32+7, trit n=4 (weight 1)
    x[240 + 2 + 4 * 1] = 1  # byte 48+2, trit n=1 (weight 27)
    codes = _block_codes("t158", x)
    expected = [stored([1, 1, 1, 1, 1])] * 48 + [stored([1, 1, 1, 1, 0])] * 4
    expected[3] = stored([1, 1, 2, 1, 1])
    expected[32 + 7] = stored([1, 1, 1, 1, 0])
    expected[48 + 2] = stored([1, 2, 1, 1, 0])
    assert codes.tolist() == expected
    assert (stored([1] * 5), stored([1, 1, 1, 1, 0])) == (128, 127)


def test_t158_decode_formula_for_every_byte():
    # trit n = ((uint8)(byte * 3^n) * 3) >> 8, also for bytes >= 243 that edgeq never writes
    fmt = FORMATS["t158"]
    codes = np.zeros((1, 52), np.uint8)
    for byte in range(256):
        codes[0, :] = byte
        trits = fmt.unpack_codes(codes)[0]
        want = [((byte * 3**n) % 256 * 3) >> 8 for n in range(5)]
        assert [trits[32 * n] for n in range(5)] == want  # bytes 0..31: element m + 32n
        assert [trits[160 + 16 * n] for n in range(5)] == want  # bytes 32..47
        assert [trits[240 + 4 * n] for n in range(4)] == want[:4]  # bytes 48..51


def test_b1_bit_order():
    # bit i of little-endian uint32 word w holds x[32w + i]; bit 1 = -1
    x = np.ones(64, np.int8)
    x[33] = -1   # word 1, bit 1
    x[7] = -1    # word 0, bit 7
    x[63] = -1   # word 1, bit 31
    codes = _block_codes("b1", x)
    words = codes.view("<u4")
    assert words.tolist() == [1 << 7, (1 << 1) | (1 << 31)]
    assert codes.tolist() == [0x80, 0, 0, 0, 0x02, 0, 0, 0x80]


def test_q4_bit_order():
    # byte j: x[2j] in the low nibble, x[2j+1] in the high nibble, u = q + 8 (or q + z)
    x = np.zeros(32, np.int8)
    x[0], x[1], x[2], x[31] = -8, 7, 1, -1
    codes = _block_codes("q4", x, ids.SCALE_BLOCK)
    expected = [0x88] * 16
    expected[0], expected[1], expected[15] = 0xF0, 0x89, 0x78
    assert codes.tolist() == expected
    # asymmetric, zero point 3: u = q + 3; padded positions (cols 3 -> 32) hold u = z, the value 0
    p = FORMATS["q4"].pack(np.array([[-3, 12, 0]], np.int8), np.ones((1, 1), np.float16), np.array([[3]], np.uint8))
    assert p.codes[0].tolist() == [0xF0, 0x33] + [0x33] * 14


def test_i8_rows_padded_to_16_bytes():
    p = FORMATS["i8"].pack(np.array([[-128, 5, 127]], np.int8), np.ones(1, np.float32))
    assert p.codes.shape == (1, 16)
    assert p.codes[0].view(np.int8).tolist() == [-128, 5, 127] + [0] * 13


def test_garbage_in_padding_reads_as_zero():
    # padding codes are ignored by int_values even when a payload holds garbage there
    p = FORMATS["b1"].pack(np.ones((2, 3), np.int8), np.ones(2, np.float32))
    data = bytearray(p.payload().data)
    data[0] = 0xFF  # bits of padded columns 3..7 of row 0 set
    q = PackedTensor.from_payload("b1", 2, 3, 64, ids.SCALE_ROW, bytes(data), p.scales_at, 0)
    assert q.int_values()[0].tolist() == [-1, -1, -1] + [0] * 61


# ---- payload: zero-copy reading and malformed payloads -------------------------------------------

def _q4_asym(rows=3, cols=100):
    rng = np.random.default_rng(1)
    nb = -(-cols // 32)
    zeros = rng.integers(0, 16, (rows, nb)).astype(np.uint8)
    values = _random_values(FORMATS["q4"], rng, rows, cols, zeros, 32)
    return FORMATS["q4"].pack(values, rng.random((rows, nb)).astype(np.float16), zeros)


def test_from_payload_is_zero_copy():
    p = _q4_asym()
    data, scales_at, zeros_at = p.payload()
    q = PackedTensor.from_payload(FORMATS["q4"], 3, 100, 32, ids.SCALE_BLOCK, data, scales_at, zeros_at, True)
    whole = np.frombuffer(data, np.uint8)
    for arr in (q.codes, q.scales, q.zeros):
        assert np.shares_memory(arr, whole)
        assert not arr.flags.writeable
    mv = memoryview(bytearray(data))
    q2 = PackedTensor.from_payload(ids.FMT_Q4, 3, 100, 32, ids.SCALE_BLOCK, mv, scales_at, zeros_at)
    assert np.shares_memory(q2.codes, np.frombuffer(mv, np.uint8))
    assert np.array_equal(q2.dequantize(), p.dequantize())


def test_truncated_or_extended_payload_raises():
    p = _q4_asym()
    data, scales_at, zeros_at = p.payload()
    for bad in (data[:-1], data[: scales_at + 1], data[:10], b"", data + b"\0"):
        with pytest.raises(BlobError, match="payload is"):
            PackedTensor.from_payload("q4", 3, 100, 32, ids.SCALE_BLOCK, bad, scales_at, zeros_at)


@pytest.mark.parametrize("change,message", [
    ({"scales_at": 8}, "not 64-byte aligned"),
    ({"scales_at": 0}, "overlaps"),
    ({"zeros_at": 64}, "overlaps"),
    ({"zeros_at": 0}, "zero points"),
    ({"block": 48}, "block 48 not supported"),
    ({"scale_kind": ids.SCALE_ROW}, "scale kind row not supported"),
    ({"scale_kind": 7}, "scale kind 7 not supported"),
    ({"fmt": 99}, "unknown weight format id 99"),
    ({"fmt": "t3"}, "unknown format 't3'"),
    ({"rows": 0}, "must be positive"),
    ({"cols": 129}, "overlaps"),
    ({"rows": 4}, "overlaps"),
])
def test_malformed_payload_raises_blob_error(change, message):
    p = _q4_asym()
    data, scales_at, zeros_at = p.payload()
    args = {"fmt": "q4", "rows": 3, "cols": 100, "block": 32, "scale_kind": ids.SCALE_BLOCK, "buffer": data,
                "scales_at": scales_at, "zeros_at": zeros_at, "has_zeros": True}
    args.update(change)
    with pytest.raises(BlobError, match=message):
        PackedTensor.from_payload(**args)


def test_zero_points_rejected_where_undefined_and_out_of_range():
    p = FORMATS["t2"].pack(np.zeros((1, 256), np.int8), np.ones(1, np.float32))
    data, scales_at, _ = p.payload()
    with pytest.raises(BlobError, match="zero points"):
        PackedTensor.from_payload("t2", 1, 256, 256, ids.SCALE_ROW, data + bytes(60), scales_at, 64 + 64)
    q = _q4_asym(1, 32)
    data = bytearray(q.payload().data)
    data[q.zeros_at] = 16
    with pytest.raises(BlobError, match="zero point 16"):
        PackedTensor.from_payload("q4", 1, 32, 32, ids.SCALE_BLOCK, bytes(data), q.scales_at, q.zeros_at)


@pytest.mark.parametrize("name,values,kwargs,message", [
    ("t2", [[2]], {}, "values must lie in"),
    ("t158", [[-2]], {}, "values must lie in"),
    ("b1", [[0]], {}, "-1 or \\+1"),
    ("q4", [[8]], {"scales": np.ones((1, 1), np.float16)}, "values must lie in"),
    ("q4", [[13]], {"scales": np.ones((1, 1), np.float16), "zeros": np.array([[3]])}, "0..15"),
    ("q4", [[0]], {"scales": np.ones((1, 1), np.float16), "zeros": np.array([[16]])}, "zero points"),
    ("i8", [[0.5]], {}, "integer array"),
    ("t2", [[0]], {"block": 64}, "block 64 not supported"),
    ("b1", [[1]], {"scale_kind": ids.SCALE_BLOCK}, "scale kind block"),
    ("t2", [[0]], {"zeros": np.zeros((1, 1))}, "zero points"),
])
def test_pack_rejects_what_the_format_cannot_hold(name, values, kwargs, message):
    kwargs = {"scales": np.ones(1, np.float32), **kwargs}
    with pytest.raises(ValueError, match=message):
        FORMATS[name].pack(np.array(values), **kwargs)


def test_packed_tensor_checks_its_arrays():
    p = FORMATS["t2"].pack(np.zeros((2, 256), np.int8), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="scales must be float32"):
        PackedTensor(p.format, p.name, 2, 256, 256, ids.SCALE_ROW, p.codes, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="codes must be uint8"):
        PackedTensor(p.format, p.name, 2, 256, 256, ids.SCALE_ROW, p.codes[:, :10], p.scales)


# ---- registry and binary activations -------------------------------------------------------------

def test_registry():
    assert list(FORMATS) == ["t2", "t158", "b1", "q4", "i8"]
    expected = {"t2": ids.FMT_T2, "t158": ids.FMT_T158, "b1": ids.FMT_B1, "q4": ids.FMT_Q4, "i8": ids.FMT_I8}
    for name, fmt in FORMATS.items():
        assert fmt.id == expected[name] and by_id(fmt.id) is fmt and resolve(name) is fmt and resolve(fmt.id) is fmt
    with pytest.raises(BlobError):
        by_id(ids.FMT_F32)


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 200), st.integers(0, 2**32 - 1))
def test_binary_activations_match_b1_weights(n, k, seed):
    x = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    x[:, 0] = 0.0  # 0 -> +1 (bit 0)
    words = pack_binary_activations(x)
    assert words.dtype == np.uint32 and words.shape == (n, -(-k // 64) * 2)
    signs = np.where(x < 0, -1, 1).astype(np.int8)
    assert np.array_equal(unpack_binary_activations(words, k), signs)
    weights = FORMATS["b1"].pack(signs, np.ones(n, np.float32))
    assert np.array_equal(words.view(np.uint8), weights.codes)
