"""The model: `Policy` (a model with its tokenizer, image processor, pixel budgets and prompt), r3-tiny
and its tokenizer, `load_policy` for local Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 / SmolVLM folders, the
per-family rules, LoRA adapters, and the published shapes built without weights."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".policy": ["R3Processor", "Policy", "build_image_processor", "load_policy"],
        ".folder": ["read_view", "read_extra", "adapter_base"],
        ".families": ["rules_for"],
        ".adapters": ["LoRAConfig", "add_lora", "base_model", "merge"],
        ".real": ["build_real", "real_config", "real_policy"],
        ".tiny": ["TinyConfig", "build_tiny"],
        ".tokenizer": ["SPECIAL_TOKENS", "TAG_TOKENS", "corpus_lines", "build_tokenizer"],
    },
)
