"""The model: `Policy` (a model with its tokenizer, image processor, pixel budgets and prompt), r3-tiny
and its tokenizer, and `load_policy` for local Qwen2-VL / Qwen2.5-VL / Qwen3-VL folders."""
from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {
    ".policy": ["R3Processor", "Policy", "build_image_processor", "load_policy", "read_view"],
    ".tiny": ["TinyConfig", "build_tiny"],
    ".tokenizer": ["SPECIAL_TOKENS", "TAG_TOKENS", "corpus_lines", "build_tokenizer"],
})
