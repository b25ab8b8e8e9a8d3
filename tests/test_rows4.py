"""The ROWS4 weight layout end to end on the host: a ROWS4 blob gives the row-major blob's exact results
through the runtime (x86 and ref tiers have no rows4 kernels: the weights are repacked once at load, into
the planned arena), both readers refuse a layout id a tensor cannot have, and the packer writes ROWS4
only for targets that ask for it. The aarch64 kernels that read ROWS4 directly: tests/test_kernels_arm.py."""

from __future__ import annotations

import ctypes
import json

import numpy as np
import pytest
import runtime_graphs as RG
from tamper import restamp, sections

from edgeq.blob import layout as L
from edgeq.blob import read_blob, write_blob
from edgeq.errors import BlobError, EdgeqError
from edgeq.formats import ids as F
from edgeq.runtime import Session

ROWS4_CONFIGS = [c for c in RG.CONFIGS if c[0] in ("t2", "q4")]


@pytest.mark.parametrize("config", ROWS4_CONFIGS, ids=lambda c: f"{c[0]}-kind{c[1]}-b{c[2]}-z{int(c[3])}")
@pytest.mark.parametrize("tier", ["ref", "auto"])
def test_rows4_blob_matches_reference_after_repack(tmp_path, config, tier):
    fmt, kind, block, zeros = config
    g = RG.all_ops_graph(3, fmt, kind, block, zeros)
    write_blob(g, tmp_path / "row.edgeq")
    write_blob(RG.with_rows4(g), tmp_path / "rows4.edgeq")
    assert {t.packed.layout for t in read_blob(tmp_path / "rows4.edgeq").graph.tensors
            if t.packed is not None and t.packed.format in (F.FMT_T2, F.FMT_Q4)} == {F.LAYOUT_ROWS4}
    x = np.random.default_rng(5).normal(0, 1.5, (70, 7, 6, 3)).astype(np.float32)
    RG.check_session_matches_reference(tmp_path / "rows4.edgeq", g, x, tier=tier, threads=2, max_batch=70)
    RG.check_session_matches_reference(tmp_path / "rows4.edgeq", g, x[:1], tier=tier, threads=1, max_batch=1)
    # the repacked copy is part of the planned arena: exactly the row-major codes, block scales and zeros
    row, tiled = (Session(tmp_path / n, tier=tier).memory for n in ("row.edgeq", "rows4.edgeq"))
    assert tiled["activation_bytes"] == row["activation_bytes"]
    weights = [t.packed for t in g.tensors if t.packed is not None and t.packed.format in (F.FMT_T2, F.FMT_Q4)]
    copy = sum(-(-_copy_bytes(p) // 64) * 64 for p in weights)
    assert tiled["arena_bytes"] - row["arena_bytes"] in range(copy, copy + 64)


def _copy_bytes(p) -> int:
    """Bytes of repack.c's row-major copy: codes, block scales, zero points (64-aligned regions)."""
    n = p.rows * p.codes.shape[1]
    if p.scale_kind == F.SCALE_BLOCK:
        n = -(-n // 64) * 64 + p.scales.nbytes
    if p.zeros is not None:
        n = -(-n // 64) * 64 + p.zeros.nbytes
    return n


def _with_layout(buf: bytes, tensor_name: str, layout: int) -> bytes:
    """The blob with one tensor record's layout id changed and every CRC recomputed (so only the layout
    check can object)."""
    data = bytearray(buf)
    secs = {s.kind: s for s in sections(data)}
    tensors, strings = secs[L.SECTION_TENSORS], secs[L.SECTION_STRINGS]
    size = ctypes.sizeof(L.edgeq_tensor_t)
    for at in range(tensors.offset, tensors.offset + tensors.size, size):
        rec = L.edgeq_tensor_t.from_buffer(data, at)
        if bytes(data[strings.offset + rec.name:]).split(b"\0")[0].decode() == tensor_name:
            rec.layout = layout
            return bytes(restamp(data))
    raise AssertionError(f"no tensor {tensor_name}")


def _weights(g, fmt_id: int) -> list[str]:
    return [t.name for t in g.tensors if t.packed is not None and t.packed.format == fmt_id]


@pytest.mark.parametrize("fmt,layout,why", [("t2", 7, "unknown layout id 7"), ("i8", 1, "layout"),
                                            ("t158", 1, "layout")])
def test_bad_layout_ids_are_refused_by_both_readers(tmp_path, fmt, layout, why):
    fmt_id = {"t2": F.FMT_T2, "i8": F.FMT_I8, "t158": F.FMT_T158}[fmt]
    g = RG.all_ops_graph(2, fmt, F.SCALE_ROW)
    write_blob(g, tmp_path / "ok.edgeq")
    bad = tmp_path / "bad.edgeq"
    bad.write_bytes(_with_layout((tmp_path / "ok.edgeq").read_bytes(), _weights(g, fmt_id)[0], layout))
    with pytest.raises(EdgeqError, match=why) as err:
        Session(bad)
    assert "E_LAYOUT" in str(err.value) or "layout" in str(err.value)
    with pytest.raises(BlobError, match="layout"):
        read_blob(bad)


def test_rows4_on_an_activation_is_refused(tmp_path):
    g = RG.all_ops_graph(2, "t2", F.SCALE_ROW)
    write_blob(g, tmp_path / "ok.edgeq")
    bad = tmp_path / "bad.edgeq"
    bad.write_bytes(_with_layout((tmp_path / "ok.edgeq").read_bytes(), g.tensors[g.inputs[0]].name, 1))
    with pytest.raises(EdgeqError, match="layout"):
        Session(bad)
    with pytest.raises(BlobError, match="layout"):
        read_blob(bad)


def _layouts(path) -> dict[str, set[int]]:
    """format name -> layout ids of the blob's packed weights."""
    out: dict[str, set[int]] = {}
    for t in read_blob(path).graph.tensors:
        if t.packed is not None:
            out.setdefault(t.packed.fmt.name, set()).add(t.packed.layout)
    return out


def test_pack_writes_the_targets_layout(tmp_path):
    """`--target rpi5` stores T2 weights as ROWS4 (other formats stay row-major), `--target host` and no
    target row-major; the rpi5 blob computes exactly what the host blob does (here: repacked at load)."""
    from click.testing import CliRunner
    from conftest import DIGITS_MODELS

    from edgeq.cli import main

    outs = {}
    for target in ("rpi5", "host", ""):
        outs[target] = tmp_path / f"mlp-{target or 'any'}.edgeq"
        res = CliRunner().invoke(main, ["pack", str(DIGITS_MODELS / "mlp_t2_qat.pt2"), "-f", "t2", "--first-last-i8",
                                        "--calib", str(DIGITS_MODELS / "mlp_data.npz"), "-o", str(outs[target]),
                                        *(["--target", target] if target else [])])
        assert res.exit_code == 0, res.output
    assert _layouts(outs["rpi5"]) == {"t2": {F.LAYOUT_ROWS4}, "i8": {F.LAYOUT_ROW_MAJOR}}
    info = json.loads(CliRunner().invoke(main, ["inspect", str(outs["rpi5"]), "--json"]).output)
    assert {t["format"]: t["layout"] for t in info["tensors"] if "bits_per_weight" in t} == {"t2": "rows4",
                                                                                           "i8": "row-major"}
    assert _layouts(outs["host"]) == _layouts(outs[""]) == {"t2": {F.LAYOUT_ROW_MAJOR}, "i8": {F.LAYOUT_ROW_MAJOR}}
    x = np.random.default_rng(0).normal(0, 1, (5, *Session(outs["host"]).inputs[0].sample_shape)).astype(np.float32)
    want = Session(outs["host"], max_batch=5).run([x])
    got = Session(outs["rpi5"], max_batch=5).run([x])
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("target,layout", [("rpi5", F.LAYOUT_ROWS4), ("rpi4", F.LAYOUT_ROW_MAJOR),
                                           ("android-arm64", F.LAYOUT_ROW_MAJOR)])
def test_deploy_packs_in_the_targets_layout(tmp_path, target, layout):
    """The pack inside `edgeq deploy`: rpi5 (dotprod) gets ROWS4 Q4; rpi4 (no SDOT) and android-arm64 (its i8mm
    tier's SMMLA GEMM reads row-major) get row-major."""
    from conftest import DIGITS_MODELS

    from edgeq.runner.deploy import blob_for
    from edgeq.targets.registry import get_target

    blob = blob_for(get_target(target), DIGITS_MODELS / "mlp_q4_qat.pt2", "q4", DIGITS_MODELS / "mlp_data.npz",
                    tmp_path)
    assert _layouts(blob) == {"q4": {layout}}


def test_latency_model_uses_the_rows4_kernels_where_the_packer_writes_them():
    from edgeq.targets.latency import kernel_cost, kernels_for
    from edgeq.targets.registry import get_target

    rpi5, rpi4 = kernels_for(get_target("rpi5")), kernels_for(get_target("rpi4"))
    assert rpi5["t2"] == "neon_dotprod/t2_rows4_matvec" and rpi5["q4"] == "neon_dotprod/q4_rows4_matvec"
    assert rpi5["t158"] == "neon_dotprod/t158_matvec" and rpi4["t2"] == "neon/t2_matvec"
    assert kernel_cost(rpi5["t2"]).insn_per_weight < kernel_cost("neon_dotprod/t2_matvec").insn_per_weight


def test_packer_leaves_lut_hinted_weights_row_major():
    """The lookup-table kernel packs from row-major codes: the packer keeps those weights row-major for rpi5."""
    from edgeq.packer import apply_target_layout

    g = RG.all_ops_graph(4, "t2", F.SCALE_ROW)
    hinted = next(op for op in g.ops if op.op == L.OP_LINEAR)
    hinted.flags = L.OPF_LUT
    apply_target_layout(g, "rpi5")
    layouts = {i: t.packed.layout for i, t in enumerate(g.tensors) if t.packed is not None}
    assert layouts[hinted.inputs[1]] == F.LAYOUT_ROW_MAJOR
    assert F.LAYOUT_ROWS4 in layouts.values()
