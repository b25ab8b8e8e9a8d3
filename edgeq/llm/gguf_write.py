"""Writes llama-architecture GGUF files that both edgeq.llm.load_llama and llama.cpp read (docs/llm.md).

Shared by examples/tiny-llm/train.py (the trained tiny model) and benchmarks/llm_synth.py (random
ternary weights in BitNet-2B4T layer shapes). Tensors are quantized one at a time as they are added, so
a caller may stream large float matrices; the file is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq.llm.gguf_llama import LlamaParams


@dataclass(frozen=True)
class TokenizerMeta:
    """tokenizer.ggml.* of a gpt2 byte-level BPE vocabulary."""

    tokens: list[str]
    merges: list[str]
    control: frozenset[str]
    bos: int
    eos: int
    add_bos: bool = True

    @classmethod
    def from_gguf(cls, path: str | Path) -> TokenizerMeta:
        """The vocabulary another GGUF file carries (e.g. the tiny model's 1024-token BPE)."""
        from gguf import GGUFReader, TokenType

        fields = GGUFReader(path).fields

        def array(key: str) -> list:
            f = fields[key]
            return [f.contents(i) for i in range(len(f.data))]

        tokens = [str(t) for t in array("tokenizer.ggml.tokens")]
        types = array("tokenizer.ggml.token_type")
        return cls(tokens, [str(m) for m in array("tokenizer.ggml.merges")],
                   frozenset(t for t, k in zip(tokens, types, strict=True) if k == TokenType.CONTROL),
                   int(fields["tokenizer.ggml.bos_token_id"].contents()),
                   int(fields["tokenizer.ggml.eos_token_id"].contents()),
                   bool(fields["tokenizer.ggml.add_bos_token"].contents()))


def write_llama_gguf(path: str | Path, p: LlamaParams, tok: TokenizerMeta,
                     tensors: Iterable[tuple[str, np.ndarray, str]], name: str, description: dict) -> Path:
    """tensors: (GGUF name, float values in numpy order [out, in], GGML type name such as "TQ2_0")."""
    import gguf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".gguf")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        w = gguf.GGUFWriter(str(tmp), "llama")
        w.add_name(name)
        w.add_description(json.dumps(description, sort_keys=True))
        w.add_context_length(p.context)
        w.add_embedding_length(p.dim)
        w.add_block_count(p.layers)
        w.add_feed_forward_length(p.ffn)
        w.add_head_count(p.heads)
        w.add_head_count_kv(p.kv_heads)
        w.add_rope_dimension_count(p.rope_dims)
        w.add_rope_freq_base(p.rope_base)
        w.add_layer_norm_rms_eps(p.norm_eps)
        w.add_vocab_size(p.vocab)
        w.add_file_type(gguf.LlamaFileType.MOSTLY_TQ2_0)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt-2")
        w.add_token_list(tok.tokens)
        w.add_token_types([gguf.TokenType.CONTROL if t in tok.control else gguf.TokenType.NORMAL for t in tok.tokens])
        w.add_token_merges(tok.merges)
        w.add_bos_token_id(tok.bos)
        w.add_eos_token_id(tok.eos)
        w.add_add_bos_token(tok.add_bos)
        for tname, values, qname in tensors:
            qtype = gguf.GGMLQuantizationType[qname]
            a = np.asarray(values, dtype=np.float32)
            if qtype == gguf.GGMLQuantizationType.F32:
                w.add_tensor(tname, a)
            else:
                w.add_tensor(tname, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
