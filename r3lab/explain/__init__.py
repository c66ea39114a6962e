"""Explanations: attention to image tokens captured at SDPA cost, mapped onto patch grids and pixels;
one record per crop decision with gradient attribution (captum), activation patching and a logit lens beside
attention, and their faithfulness (pointing game, deletion / insertion, a random baseline)."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".selection": ["CaptureConfig"],
        ".capture": ["Capture", "capture_attention", "attention_maps"],
        ".maps": ["AttentionMaps"],
        ".crops": ["CropExplanation", "explain_crops", "disagreements", "crop_table", "explanation_table"],
        ".swaps": ["counterfactual_trajectory", "variant_image", "answer_logprobs"],
        ".attention_box": ["AttentionBox", "attention_vs_box", "attention_box_counts"],
        ".contract": [
            "WhyConfig",
            "CropRecord",
            "AttentionSummary",
            "Importance",
            "MethodResult",
            "Method",
            "METHODS",
            "MAP_METHODS",
            "SWAPS",
        ],
        ".hooks": ["text_parts", "frozen"],
        ".stream": ["Stream", "target_positions"],
        ".gradients": ["attribute"],
        ".patching": ["patch_layers", "patch_map"],
        ".lens": ["logit_lens"],
        ".faithfulness": ["pointing_game", "curves", "random_map", "chance_pointing", "agreement", "disagreeing"],
        ".runs": ["ExplainRun", "explain_samples", "explain_trajectories", "mean_effects", "lens_summary"],
        ".record": ["explain"],
    },
)
