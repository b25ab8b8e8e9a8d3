"""The tokenizer a GGUF file carries (tokenizer.ggml.*), rebuilt with the `tokenizers` package.

Only byte-level BPE ("gpt2", GPT-2 pre-tokenizer regex) is implemented; other models are refused by
name. Control tokens (BOS/EOS...) are never produced from text, as in llama.cpp with special=False.
"""

from __future__ import annotations

from edgeq.errors import EdgeqError
from edgeq.llm.gguf_llama import LlamaModel


class GGUFTokenizer:
    def __init__(self, model: LlamaModel):
        if model.tokenizer_model != "gpt2":
            raise EdgeqError(f"{model.path}: tokenizer model '{model.tokenizer_model}' is not supported (edgeq takes 'gpt2' BPE)")
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        vocab = {t: i for i, t in enumerate(model.tokens)}
        merges = [tuple(m.split(" ", 1)) for m in model.merges]
        self._tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        self._tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        self._tok.decoder = decoders.ByteLevel()
        self.bos, self.eos, self.add_bos = model.bos, model.eos, model.add_bos

    def encode(self, text: str) -> list[int]:
        ids = self._tok.encode(text).ids
        return ([self.bos] if self.add_bos and self.bos is not None else []) + ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode([i for i in ids if i not in (self.bos, self.eos)])
