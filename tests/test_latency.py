"""Roofline latency model: the arithmetic, labels, and the published Raspberry Pi 5 table in the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgeq.errors import EdgeqError
from edgeq.targets import get_target, list_targets
from edgeq.targets.latency import (
    KERNEL_COSTS,
    Layer,
    decoder_layers,
    from_instructions,
    kernel_cost,
    kernels_for,
    predict,
    predict_blob,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "latency-model.md"
PUBLISHED = [("T-MAC", 1, 8.03), ("T-MAC", 2, 11.09), ("llama.cpp (Q2_K)", 1, 1.37), ("llama.cpp (Q2_K)", 2, 2.71)]
BITS = {"T-MAC": 2.0, "llama.cpp (Q2_K)": 2.625}


def bitnet_3b(system: str, threads: int):
    """The docs' BitNet-b1.58-3B decode step on rpi5 (see docs/latency-model.md for every assumption)."""
    layers = decoder_layers(3200, 8640, 26, 32002, "ggml/tq2_0", BITS[system], "neon_dotprod/i8_matvec", 8.5)
    return predict(get_target("rpi5"), layers, threads, other_ops=26 * 8)


def test_roofline_arithmetic():
    rpi5 = get_target("rpi5")
    big = Layer("big", 4096, 4096, "ggml/tq2_0", 2.0625)
    one = predict(rpi5, [big], threads=1).layers[0]
    assert one.compute_s == pytest.approx(4096 * 4096 * 0.34 / (2.5 * 2.4e9))
    assert one.memory_s == pytest.approx(int(4096 * 4096 * 2.0625 / 8) / 9.3e9)
    assert one.time_s == pytest.approx(max(one.compute_s, one.memory_s) + 5e-6)
    assert one.bound == "compute" and one.source == "modelled"
    two = predict(rpi5, [big], threads=2).layers[0]
    assert two.compute_s == pytest.approx(one.compute_s / 2)
    assert two.memory_s == pytest.approx(int(4096 * 4096 * 2.0625 / 8) / 13.2e9)
    many = predict(rpi5, [big], threads=64)
    assert many.threads == 4 and many.assumptions["read_gbps"] == 13.2  # last measured entry holds beyond
    i8 = predict(rpi5, [Layer("i8", 4096, 4096, "neon_dotprod/i8_matvec", 8.0)], 1).layers[0]
    assert i8.bound == "memory"


def test_from_instructions():
    assert from_instructions(get_target("stm32h7"), 480_000_000) == pytest.approx(1 / 1.2)
    with pytest.raises(EdgeqError):
        from_instructions(get_target("rpi5"), 1, threads=0)


def test_every_cost_is_labelled():
    for name, cost in KERNEL_COSTS.items():
        assert cost.status in ("emulated", "peer-measured", "placeholder", "estimate") and cost.source, name
    assert kernel_cost("made_up/t2").status == "estimate"


@pytest.mark.parametrize("board", [t.id for t in list_targets() if t.family != "fpga"])
def test_blob_prediction_on_every_cpu_target(board, mlp_t2_blob):
    t = get_target(board)
    est = predict_blob(t, mlp_t2_blob)
    data = est.to_json()
    assert data["source"] == "modelled" and all(x["source"] == "modelled" for x in data["layers"])
    assert len(est.layers) == 3 and est.total_s > 0
    assert all(x.kernel == kernels_for(t)["t2"] for x in est.layers)
    assert all(KERNEL_COSTS.get(x.kernel) is not None for x in est.layers)


def test_fpga_has_no_cpu_model():
    with pytest.raises(EdgeqError, match="fpga"):
        kernels_for(get_target("xc7z020"))


def test_docs_table_matches_the_model():
    text = DOC.read_text()
    for system, threads, published in PUBLISHED:
        est = bitnet_3b(system, threads)
        tok = 1 / est.total_s
        error = round((tok / published - 1) * 100)
        row = (f"| {system} | {threads} | {published} | {tok:.2f} | {'+' if error > 0 else '−'}{abs(error)} % "
               f"| {est.total_s * 1e3:.0f} | {sum(x.memory_s for x in est.layers) * 1e3:.0f} "
               f"| {sum(x.compute_s for x in est.layers) * 1e3:.0f} |")
        assert row in text, row
    assert re.search(r"## Host: model vs `edgeq bench`", text)
