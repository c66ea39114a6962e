"""Explanations: attention to image tokens captured at SDPA cost, mapped onto patch grids and pixels,
and one record per crop decision (attention in the box, counterfactual importance, IoU with the truth)."""
from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {
    ".capture": ["CaptureConfig", "Capture", "capture_attention", "attention_maps"],
    ".maps": ["AttentionMaps"],
    ".crops": ["ExplainConfig", "CropExplanation", "explain_crops", "disagreements", "counterfactual_trajectory",
        "answer_logprobs", "explanation_table"],
})
