"""llama-architecture GGUF files -> hyper-parameters, weights and tokenizer (docs/llm.md).

The file is walked by edgeq.importers.gguf_import.validate first (every count, length and offset
bounds-checked), so gguf-py only ever reads a file already known to be well formed. Missing tensors,
wrong shapes and hyper-parameters edgeq does not implement are refused with one message naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.importers.gguf_import import validate

LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
WEIGHT_TYPES = ("TQ1_0", "TQ2_0", "Q4_0", "Q8_0", "F16", "F32")
REQUIRED_KEYS = ("context_length", "embedding_length", "block_count", "feed_forward_length",
                 "attention.head_count", "attention.layer_norm_rms_epsilon")


@dataclass(frozen=True)
class LlamaParams:
    vocab: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    context: int
    rope_base: float
    rope_dims: int
    norm_eps: float

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


@dataclass
class Weight:
    """One weight matrix as stored (GGUF type + raw blocks) and dequantized (numpy order [out, in])."""

    name: str
    ggml_type: str
    raw: np.ndarray
    values: np.ndarray


@dataclass
class LlamaModel:
    path: Path
    params: LlamaParams
    weights: dict[str, Weight] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)
    tokenizer_model: str = ""
    bos: int | None = None
    eos: int | None = None
    add_bos: bool = True

    def w(self, name: str) -> np.ndarray:
        return self.weights[name].values


def _fail(path: Path, msg: str) -> EdgeqError:
    return EdgeqError(f"{path}: {msg}")


def _params(path: Path, meta: dict, vocab: int) -> LlamaParams:
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise _fail(path, f"architecture '{arch}' is not supported (edgeq generate takes 'llama')")
    missing = [k for k in REQUIRED_KEYS if f"llama.{k}" not in meta]
    if missing:
        raise _fail(path, f"missing llama hyper-parameter(s): {', '.join('llama.' + k for k in missing)}")

    def g(key: str, default=None):
        return meta.get(f"llama.{key}", default)

    dim, heads = int(g("embedding_length")), int(g("attention.head_count"))
    p = LlamaParams(vocab=vocab, dim=dim, layers=int(g("block_count")), heads=heads,
                    kv_heads=int(g("attention.head_count_kv", heads)), ffn=int(g("feed_forward_length")),
                    context=int(g("context_length")), rope_base=float(g("rope.freq_base", 10000.0)),
                    rope_dims=int(g("rope.dimension_count", dim // max(heads, 1))),
                    norm_eps=float(g("attention.layer_norm_rms_epsilon")))
    unsupported = []
    if p.heads <= 0 or p.dim % p.heads:
        unsupported.append(f"head_count {p.heads} does not divide embedding_length {p.dim}")
    elif p.kv_heads <= 0 or p.heads % p.kv_heads:
        unsupported.append(f"head_count_kv {p.kv_heads} does not divide head_count {p.heads}")
    elif p.rope_dims != p.head_dim:
        unsupported.append(f"partial RoPE (rope.dimension_count {p.rope_dims} != head dim {p.head_dim})")
    for key in ("rope.scaling.type", "expert_count", "attention.sliding_window"):
        if g(key) not in (None, "none", 0):
            unsupported.append(f"llama.{key} = {g(key)}")
    if unsupported:
        raise _fail(path, "unsupported hyper-parameter(s): " + "; ".join(unsupported))
    return p


def expected_shapes(p: LlamaParams) -> dict[str, tuple[int, ...]]:
    """numpy-order shapes of every tensor the forward pass reads."""
    kv = p.kv_heads * p.head_dim
    shapes = {"token_embd.weight": (p.vocab, p.dim), "output_norm.weight": (p.dim,)}
    for i in range(p.layers):
        b = f"blk.{i}."
        shapes.update({b + "attn_norm.weight": (p.dim,), b + "ffn_norm.weight": (p.dim,),
                       b + "attn_q.weight": (p.dim, p.dim), b + "attn_k.weight": (kv, p.dim),
                       b + "attn_v.weight": (kv, p.dim), b + "attn_output.weight": (p.dim, p.dim),
                       b + "ffn_gate.weight": (p.ffn, p.dim), b + "ffn_up.weight": (p.ffn, p.dim),
                       b + "ffn_down.weight": (p.dim, p.ffn)})
    return shapes


def load_llama(path: str | Path) -> LlamaModel:
    path = Path(path)
    head = validate(path)
    from gguf import GGUFReader
    from gguf.quants import GGMLQuantizationType, dequantize

    try:
        reader = GGUFReader(path)
    except (ValueError, KeyError, TypeError, OverflowError) as e:
        raise _fail(path, f"gguf-py cannot read this file ({e})") from None
    fields = reader.fields

    def array(key: str) -> list | None:
        f = fields.get(key)
        return None if f is None else [f.contents(i) for i in range(len(f.data))]

    tokens = array("tokenizer.ggml.tokens") or []
    if not tokens:
        raise _fail(path, "no tokenizer.ggml.tokens: edgeq needs the GGUF's own vocabulary")
    p = _params(path, head.metadata, len(tokens))
    by_name = {t.name: t for t in reader.tensors}
    shapes = expected_shapes(p)
    missing = [n for n in shapes if n not in by_name]
    if missing:
        raise _fail(path, f"missing tensor(s): {', '.join(missing[:20])}" + (" ..." if len(missing) > 20 else ""))
    m = LlamaModel(path, p, tokens=[str(t) for t in tokens], merges=[str(x) for x in array("tokenizer.ggml.merges") or []],
                   tokenizer_model=str(head.metadata.get("tokenizer.ggml.model", "")),
                   bos=head.metadata.get("tokenizer.ggml.bos_token_id"), eos=head.metadata.get("tokenizer.ggml.eos_token_id"),
                   add_bos=bool(head.metadata.get("tokenizer.ggml.add_bos_token", True)))
    names = [*shapes, "output.weight"] if "output.weight" in by_name else list(shapes)
    bad = []
    for name in names:
        t = by_name[name]
        qtype = GGMLQuantizationType(int(t.tensor_type))
        want = shapes.get(name, (p.vocab, p.dim))
        if qtype.name not in WEIGHT_TYPES:
            bad.append(f"{name}: {qtype.name}")
            continue
        values = dequantize(np.asarray(t.data), qtype).astype(np.float32)
        if values.size != int(np.prod(want)):
            bad.append(f"{name}: {values.size} values, expected shape {list(want)}")
            continue
        m.weights[name] = Weight(name, qtype.name, np.asarray(t.data), values.reshape(want))
    if bad:
        raise _fail(path, "tensor(s) edgeq cannot take: " + "; ".join(bad) + f" (supported: {', '.join(WEIGHT_TYPES)})")
    if "output.weight" not in m.weights:  # tied embeddings
        m.weights["output.weight"] = m.weights["token_embd.weight"]
    return m
