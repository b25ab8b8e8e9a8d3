"""Transformer language models from GGUF: loader, tokenizer and numpy reference (docs/llm.md)."""
