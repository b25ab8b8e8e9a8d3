"""edgeq.llm: the llama GGUF loader refuses what it cannot run, the tokenizer matches llama.cpp's, and the
numpy reference decoder reproduces llama.cpp on the committed tiny model (reference recorded by
examples/tiny-llm/reference.py with llama-cpp-python, so this test needs no llama.cpp build)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import EdgeqError
from edgeq.llm.gguf_llama import load_llama
from edgeq.llm.reference import Decoder, quant_q8_k
from edgeq.llm.tokenizer import GGUFTokenizer

TINY = Path(__file__).resolve().parents[1] / "examples" / "tiny-llm" / "models"
MODEL, REFERENCE = TINY / "tiny-llm-tq2_0.gguf", TINY / "llamacpp_reference.npz"


def make_llama_gguf(path: Path, arch: str = "llama", drop: str | None = None, **hparams) -> Path:
    """A small F32 llama GGUF with a byte-level vocabulary (256 tokens, no merges)."""
    import gguf
    from tokenizers import pre_tokenizers

    dim, ffn, heads, layers = 8, 16, 2, 1
    w = gguf.GGUFWriter(str(path), arch)
    keys = {"context_length": 32, "embedding_length": dim, "block_count": layers, "feed_forward_length": ffn,
            "attention.head_count": heads, "attention.head_count_kv": heads,
            "attention.layer_norm_rms_epsilon": 1e-5, **hparams}
    for k, v in keys.items():
        if v is not None:
            (w.add_float32 if isinstance(v, float) else w.add_uint32)(f"{arch}.{k}", v)
    tokens = sorted(pre_tokenizers.ByteLevel.alphabet())
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (256, dim), "output_norm.weight": (dim,), "blk.0.attn_norm.weight": (dim,),
              "blk.0.ffn_norm.weight": (dim,), "blk.0.attn_q.weight": (dim, dim), "blk.0.attn_k.weight": (dim, dim),
              "blk.0.attn_v.weight": (dim, dim), "blk.0.attn_output.weight": (dim, dim),
              "blk.0.ffn_gate.weight": (ffn, dim), "blk.0.ffn_up.weight": (ffn, dim), "blk.0.ffn_down.weight": (dim, ffn)}
    for name, shape in shapes.items():
        if name != drop:
            w.add_tensor(name, rng.normal(0, 0.3, shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_small_llama_gguf_runs(tmp_path):
    m = load_llama(make_llama_gguf(tmp_path / "m.gguf"))
    assert (m.params.dim, m.params.heads, m.params.vocab) == (8, 2, 256)
    tok = GGUFTokenizer(m)
    ids = tok.encode("hi there")
    assert tok.decode(ids) == "hi there"
    logits = Decoder(m).forward(ids)
    assert logits.shape == (len(ids), 256) and np.isfinite(logits).all()


@pytest.mark.parametrize("case,message", [
    ({"arch": "gpt2"}, "architecture 'gpt2' is not supported"),
    ({"drop": "blk.0.ffn_down.weight"}, "missing tensor(s): blk.0.ffn_down.weight"),
    ({"feed_forward_length": None}, "missing llama hyper-parameter(s): llama.feed_forward_length"),
    ({"attention.head_count_kv": 3}, "head_count_kv 3 does not divide head_count 2"),
    ({"rope.dimension_count": 2}, "partial RoPE"),
    ({"feed_forward_length": 17}, "blk.0.ffn_gate.weight: 128 values, expected shape [17, 8]"),
])
def test_loader_refuses_what_it_cannot_run(tmp_path, case, message):
    path = make_llama_gguf(tmp_path / "m.gguf", **case)
    with pytest.raises(EdgeqError) as e:
        load_llama(path)
    assert message in str(e.value)


def test_truncated_gguf_is_a_clear_error(tmp_path):
    path = make_llama_gguf(tmp_path / "m.gguf")
    data = path.read_bytes()
    for cut in (10, 200, len(data) - 100):
        path.write_bytes(data[:cut])
        with pytest.raises(EdgeqError, match="malformed GGUF"):
            load_llama(path)


def test_prompt_longer_than_context_is_refused(tmp_path):
    m = load_llama(make_llama_gguf(tmp_path / "m.gguf"))
    d = Decoder(m)
    with pytest.raises(EdgeqError, match="exceed the model's context of 32"):
        d.forward(list(range(33)))
    d.forward(list(range(30)))
    with pytest.raises(EdgeqError, match="32 tokens exceed|exceed the model's context"):
        d.forward([1, 2, 3])


def test_q8_k_matches_ggml_rules():
    x = np.zeros((1, 256), np.float32)
    x[0, :4] = [0.5, -2.0, 2.0, 1.0]  # -2.0 comes first among the largest magnitudes: iscale = 63.5
    q = quant_q8_k(x)
    np.testing.assert_allclose(q[0, :4], np.array([32, -127, 127, 64]) / np.float32(63.5), rtol=1e-6)
    assert (quant_q8_k(np.zeros((2, 512), np.float32)) == 0).all()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def tiny():
    if not REFERENCE.is_file():
        pytest.skip("no llama.cpp reference recorded (examples/tiny-llm/reference.py)")
    return load_llama(MODEL), np.load(REFERENCE)


def test_tokenizer_matches_llama_cpp(tiny):
    m, ref = tiny
    tok = GGUFTokenizer(m)
    for i, prompt in enumerate(ref["prompts"]):
        assert tok.encode(str(prompt)) == ref[f"prompt_tokens_{i}"].tolist()


@pytest.mark.parametrize("mode,min_cosine", [("llamacpp", 0.999), ("edgeq", 0.99)])
def test_teacher_forced_logits_match_llama_cpp(tiny, mode, min_cosine):
    m, ref = tiny
    for i in range(len(ref["prompts"])):
        full = np.concatenate([ref[f"prompt_tokens_{i}"], ref[f"greedy_{i}"]])
        want = ref[f"logits_{i}"]
        got = Decoder(m, mode).forward(full[: len(want)].tolist())
        assert _cosine(got, want).min() >= min_cosine, (mode, i, _cosine(got, want).min())


def test_greedy_tokens_equal_llama_cpp_in_its_mode(tiny):
    m, ref = tiny
    d = Decoder(m, "llamacpp")
    for i in range(len(ref["prompts"])):
        want = ref[f"greedy_{i}"].tolist()
        assert d.greedy(ref[f"prompt_tokens_{i}"].tolist(), len(want)) == want, i
