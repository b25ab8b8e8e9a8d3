"""benchmarks/llm_synth.py and the modelled part of benchmarks/bench_llm.py (llama.cpp is never run here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_llm
import llm_synth


@pytest.mark.parametrize("per", ["tensor", "block"])
def test_synthetic_gguf_loads_with_absmean_ternary_weights(tmp_path, per):
    from edgeq.llm.gguf_llama import load_llama
    from edgeq.llm.tokenizer import GGUFTokenizer

    c = llm_synth.SynthConfig(dim=256, ffn=512, heads=4, kv_heads=2, layers=2, context=64, scale=per, seed=3)
    path = llm_synth.write_synth(c, tmp_path / "s.gguf")
    m = load_llama(path)
    p = m.params
    assert (p.vocab, p.dim, p.ffn, p.layers, p.heads, p.kv_heads, p.context) == (1024, 256, 512, 2, 4, 2, 64)
    assert p.rope_base == c.rope_base and p.head_dim == 64
    assert m.weights["blk.1.attn_k.weight"].values.shape == (128, 256)
    assert m.weights["blk.0.ffn_down.weight"].values.shape == (256, 512)
    assert m.weights["token_embd.weight"].ggml_type == "Q8_0" and m.weights["output.weight"].ggml_type == "Q8_0"
    for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        w = m.weights[f"blk.1.{name}.weight"]
        assert w.ggml_type == "TQ2_0"
        blocks = w.values.reshape(w.values.shape[0], -1, 256)
        scale = np.abs(blocks).max(axis=-1, keepdims=True)
        assert (scale > 0).all()
        codes = blocks / scale
        assert set(np.unique(codes)) == {-1.0, 0.0, 1.0}  # {-1, 0, +1} x one scale per 256-weight block
        assert 0.2 < (codes == 0).mean() < 0.45  # absmean ternarization of a Gaussian zeroes ~31 %
        n_scales = len(np.unique(scale))
        assert n_scales == 1 if per == "tensor" else n_scales > 1  # BitNet's one absmean, or one per block
    assert GGUFTokenizer(m).encode("Return the number of")[0] == m.bos
    # same parameters, same bytes: the cache key covers everything the file depends on
    again = llm_synth.write_synth(c, tmp_path / "t.gguf")
    assert again.read_bytes() == path.read_bytes()
    for other in ({"seed": 4}, {"scale": "block" if per == "tensor" else "tensor"}):
        assert c.key() != llm_synth.SynthConfig(**{**c.__dict__, **other}).key()


def test_synthetic_config_refuses_shapes_tq2_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="multiples of 256"):
        llm_synth.write_synth(llm_synth.SynthConfig(dim=320, heads=4, kv_heads=2), tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="scale"):
        llm_synth.write_synth(llm_synth.SynthConfig(scale="row"), tmp_path / "y.gguf")
    assert not list(tmp_path.iterdir())


def test_modelled_decode_is_the_rpi5_roofline():
    """With the kernel costs latency.py holds, the modelled step equals latency.predict on the same layers
    (a shape without GQA, which latency.decoder_layers assumes)."""
    from edgeq.targets.latency import KERNEL_COSTS, decoder_layers, predict
    from edgeq.targets.registry import get_target

    t2, i8 = KERNEL_COSTS["neon_dotprod/t2_matvec"], KERNEL_COSTS["neon_dotprod/i8_matvec"]
    costs = {"t2": [{"M": 4096, "K": 4096, "insn_per_weight": t2.insn_per_weight, "bits_per_weight": 2.0625}],
             "i8": [{"M": 4096, "K": 4096, "insn_per_weight": i8.insn_per_weight, "bits_per_weight": 8.5}]}
    for threads in (1, 2, 4):
        got = bench_llm.modelled_decode(bench_llm.BITNET_3B, "t2", "i8", threads, costs)
        layers = decoder_layers(3200, 8640, 26, 32002, "neon_dotprod/t2_matvec", 2.0625, "neon_dotprod/i8_matvec", 8.5)
        want = predict(get_target("rpi5"), layers, threads, other_ops=26 * bench_llm.OPS_PER_LAYER)
        assert got["ms"] == pytest.approx(want.total_s * 1e3, rel=1e-6)
        assert got["compute_ms"] == pytest.approx(sum(x.compute_s for x in want.layers) * 1e3, rel=1e-6)
        assert got["source"] == "modelled"
    # the KV cache read at a later position adds bytes / bandwidth
    far = bench_llm.modelled_decode(bench_llm.BITNET_3B, "t2", "i8", 1, costs, kv_position=100)
    near = bench_llm.modelled_decode(bench_llm.BITNET_3B, "t2", "i8", 1, costs)
    assert far["ms"] - near["ms"] == pytest.approx(26 * 2 * 3200 * 100 * 2 / 9.3e9 * 1e3)


def test_modelled_2b4t_from_the_committed_arm_counts():
    arm = bench_llm.latest_arm_json()
    costs = bench_llm.arm_costs(arm)
    ipw = {(r["name"], r["M"], r["K"]): r["insn_per_weight"] for r in json.loads(arm.read_text())["rows"]}
    assert bench_llm.nearest(costs["t2 row"], 640, 2560)["K"] == 2560  # k/v take the counted K=2560 shape
    assert [m for _, m, _ in bench_llm.BITNET_2B4T.linears()] == [2560, 640, 640, 2560, 6912, 6912, 2560]
    one, two = (bench_llm.modelled_decode(bench_llm.BITNET_2B4T, "t2 row", "q4", t, costs) for t in (1, 2))
    assert 1 < one["tok_s"] < two["tok_s"] < 100 and one["source"] == "modelled"
    # compute by hand: K=2560 mat-vecs at the 6912x2560 count, ffn_down at 2560x6912, the tied head at Q4
    t2, q4 = costs["t2 row"][0]["name"], costs["q4"][0]["name"]
    assert t2.startswith("neon_dotprod t2 row") and q4.startswith("neon_dotprod q4 g32")
    k2560, k6912 = ipw[(t2, 6912, 2560)], ipw[(t2, 2560, 6912)]
    insns = 30 * ((2 * 2560 + 2 * 640 + 2 * 6912) * 2560 * k2560 + 2560 * 6912 * k6912)
    insns += 128256 * 2560 * ipw[(q4, 6912, 2560)]
    assert one["compute_ms"] == pytest.approx(insns / (2.5 * 2.4e9) * 1e3, rel=1e-6)
