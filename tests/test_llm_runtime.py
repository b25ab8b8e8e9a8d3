"""The C decoder path (runtimes/src/decoder.c, edgeq.llm.pack / engine, edgeq_sample, the runner's
--generate, `edgeq generate`) against llama.cpp's recorded output and the numpy reference (docs/llm.md)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgeq.blob import layout as L
from edgeq.blob import read_blob, write_blob
from edgeq.cli import main
from edgeq.errors import BlobError, EdgeqError
from edgeq.llm.engine import Engine, pack_gguf
from edgeq.llm.gguf_llama import load_llama
from edgeq.llm.pack import llama_graph
from edgeq.llm.reference import Decoder
from edgeq.llm.sampling import Sampler, sample
from edgeq.runtime import Sampler as CSampler
from edgeq.runtime import Session
from tests.test_llm import MODEL, REFERENCE

PROMPTS = 5


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def ref():
    return np.load(REFERENCE)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    d = tmp_path_factory.mktemp("llm")
    return {mode: pack_gguf(MODEL, mode, out=d / f"tiny-{mode}.edgeq") for mode in ("edgeq", "llamacpp")}


def _agreement(engine: Engine, ref) -> tuple[list[int], float]:
    """(first differing greedy position per prompt, 64 = all equal), min teacher-forced cosine."""
    firsts, worst = [], 1.0
    for i in range(PROMPTS):
        prompt, greedy = [int(x) for x in ref[f"prompt_tokens_{i}"]], [int(x) for x in ref[f"greedy_{i}"]]
        got = engine.generate(prompt, 64).tokens
        firsts.append(next((j for j, (a, b) in enumerate(zip(got, greedy)) if a != b), 64))
        engine.reset()
        expect = ref[f"logits_{i}"]
        logits = engine.forward(prompt + greedy[: len(expect) - len(prompt)])
        worst = min(worst, float(cosines(logits, expect).min()))
    return firsts, worst


def test_llamacpp_mode_matches_llama_cpp(blobs, ref):
    """Q8_K/Q8_0 activation blocks, fp16 KV cache: greedy 64 tokens equal on 5/5 prompts, cosine >= 0.999."""
    firsts, worst = _agreement(Engine(blobs["llamacpp"], threads=2), ref)
    assert firsts == [64] * PROMPTS
    assert worst >= 0.999


def test_edgeq_mode_logits_close_to_llama_cpp(blobs, ref):
    _, worst = _agreement(Engine(blobs["edgeq"]), ref)
    assert worst >= 0.99


@pytest.mark.parametrize("mode", ["edgeq", "llamacpp"])
def test_c_decoder_follows_the_numpy_reference(blobs, mode):
    tokens = list(range(3, 60, 2))
    c = Engine(blobs[mode]).forward(tokens)
    ref = Decoder(load_llama(MODEL), mode).forward(tokens)
    assert cosines(c, ref).min() >= 0.9999
    assert (c.argmax(1) == ref.argmax(1)).mean() >= 0.95


def test_chunked_prompt_equals_token_by_token(blobs):
    """Prefill in chunks of 8 (GEMM kernels, causal within the chunk) gives the logits of 1-token steps."""
    tokens = [5, 17, 300, 42, 9, 811, 2, 77, 64, 128, 5, 6, 1000]
    chunked = Engine(blobs["edgeq"], chunk=8).forward(tokens)
    one = Engine(blobs["edgeq"], chunk=1)
    steps = np.concatenate([one.forward([t]) for t in tokens])
    assert np.array_equal(chunked, steps)


def test_kv_cache_is_state_and_positions_are_checked(blobs):
    g = read_blob(blobs["edgeq"]).graph
    caches = [t for t in g.tensors if t.flags & L.TENSOR_STATE]
    p = load_llama(MODEL).params
    assert len(caches) == 2 * p.layers and all(t.shape == (p.context, p.kv_heads * p.head_dim) for t in caches)
    s = Session(blobs["edgeq"])
    with pytest.raises(EdgeqError, match="position 256 outside the context of 256"):
        s.run([np.array([[1]], np.int32), np.array([[256]], np.int32)])
    with pytest.raises(EdgeqError, match="outside the vocabulary"):
        s.run([np.array([[5000]], np.int32), np.array([[0]], np.int32)])


def test_prompt_longer_than_context_is_refused(blobs):
    e = Engine(blobs["edgeq"])
    with pytest.raises(EdgeqError, match="exceed the model's context of 256"):
        e.generate(list(range(1, 250)), 20)


def test_cache_that_is_not_state_is_refused(tmp_path):
    g = llama_graph(load_llama(MODEL))
    cache = next(t for t in g.tensors if t.flags & L.TENSOR_STATE)
    cache.flags &= ~L.TENSOR_STATE
    write_blob(g, tmp_path / "bad.edgeq")
    with pytest.raises(BlobError, match="must be state tensors"):
        Session(tmp_path / "bad.edgeq")


def test_sampler_matches_its_numpy_mirror(blobs):
    e = Engine(blobs["edgeq"])
    logits = e.forward([1, 2, 3, 4])[-1]
    for seed in range(100):
        for t, k, p in ((0.8, 40, 0.95), (1.5, 0, 1.0), (0.3, 5, 0.5)):
            assert e.session.sample(logits, CSampler(t, k, p, 0, seed), 9) == sample(logits, Sampler(t, k, p, seed), 9)
    assert e.session.sample(logits, CSampler(0.0, 0, 1.0, 0, 0), 0) == int(np.argmax(logits))
    assert e.session.sample(logits, CSampler(1.0, 1, 1.0, 0, 7), 0) == int(np.argmax(logits))
    draws = {e.session.sample(logits, CSampler(1.0, 0, 1.0, 0, s), 3) for s in range(50)}
    assert len(draws) > 3  # a temperature of 1 over the top 256 does sample


def test_seeded_generation_replays(blobs):
    e = Engine(blobs["edgeq"])
    a = e.generate([1, 2, 3], 16, temperature=0.9, top_k=40, top_p=0.9, seed=11).tokens
    b = e.generate([1, 2, 3], 16, temperature=0.9, top_k=40, top_p=0.9, seed=11).tokens
    c = e.generate([1, 2, 3], 16, temperature=0.9, top_k=40, top_p=0.9, seed=12).tokens
    assert a == b and a != c


def test_generate_cli_host_and_emulated_rpi5_agree(tmp_path):
    """Host C runtime and the cross-compiled runner under qemu-aarch64 -cpu cortex-a76 (NEON dotprod kernels)
    produce the same greedy text; speeds are labelled."""
    if not shutil.which("qemu-aarch64") or not shutil.which("aarch64-linux-gnu-gcc"):
        pytest.skip("qemu-user / the aarch64 cross compiler are installed by tools/bootstrap.sh")
    runner = CliRunner()
    args = ["generate", str(MODEL), "--prompt", "Return the number of", "-n", "24", "--json"]
    host = runner.invoke(main, args)
    assert host.exit_code == 0, host.output
    arm = runner.invoke(main, [*args, "--target", "rpi5"])
    assert arm.exit_code == 0, arm.output
    h, a = json.loads(host.output), json.loads(arm.output)
    assert h["source"] == "measured" and a["source"] == "emulated"
    assert a["kernel_tier"] == "neon_dotprod" and any(k.startswith("neon_dotprod/t2") for k in a["kernels"])
    assert a["tokens"] == h["tokens"] and len(h["tokens"]) == 24
    assert a["modelled_decode_tok_s"] > 0 and a["decode_tok_s"] > 0


def test_generate_cli_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["generate", str(MODEL), "--prompt", "x", "-n", "300"])
    assert r.exit_code == 2 and "exceed the model's context" in r.output
    bad = tmp_path / "t.gguf"
    bad.write_bytes(MODEL.read_bytes()[:5000])
    r = runner.invoke(main, ["generate", str(bad), "--prompt", "x"])
    assert r.exit_code == 2 and "malformed GGUF" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["generate", str(MODEL), "--prompt", "x", "--top-p", "0"])
    assert r.exit_code == 2 and "top-p" in r.output
    r = runner.invoke(main, ["generate", str(MODEL), "--prompt", "x", "--target", "stm32h7"])
    assert r.exit_code == 2 and "microcontroller" in r.output


def test_generate_refuses_a_board_that_requires_signed_blobs(tmp_path):
    """A blob packed from a GGUF on the fly is unsigned: a board requiring signatures refuses it before
    anything is pushed, as `edgeq deploy` does."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "targets" / "rpi5.toml").read_text()
    assert "require_signature = false" in text
    (tmp_path / "rpi5.toml").write_text(text.replace("require_signature = false", "require_signature = true"))
    r = CliRunner().invoke(main, ["generate", str(MODEL), "--prompt", "x", "-n", "2", "--target", "rpi5"],
                           env={"EDGEQ_TARGETS_PATH": str(tmp_path)})
    assert r.exit_code == 2 and "requires signed blobs" in r.output, r.output
