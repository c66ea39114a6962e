"""Real model sizes without weights: the published configurations, built on the meta device or randomly initialised.

The values are those of each checkpoint's public config.json (the fields that set a shape; token ids
included so the Policy geometry is the real one), written here so that nothing is fetched at run time:

- Qwen2.5-VL-3B-Instruct: https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct/blob/main/config.json
- Qwen3-VL-2B-Instruct: https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct/blob/main/config.json
- SmolVLM-256M-Instruct: https://huggingface.co/HuggingFaceTB/SmolVLM-256M-Instruct/blob/main/config.json
  (model_type idefics3: SmolLM2-135M's text model, SigLIP base patch-16/512, pixel shuffle 4 -> 64 tokens/512 px)

`build_real(name, device="meta")` builds the transformers model of that shape (no memory on "meta");
`dtype=torch.bfloat16` on a real device allocates it with random weights (benchmarks, gpu_check.sh).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from ..core.settings import short

if TYPE_CHECKING:
    import torch

_QWEN_IDS = dict(
    image_token_id=151655,
    video_token_id=151656,
    vision_start_token_id=151652,
    vision_end_token_id=151653,
    bos_token_id=151643,
    eos_token_id=151645,
)

PUBLISHED: dict[str, dict] = {
    "qwen2.5-vl-3b": dict(
        model_type="qwen2_5_vl",
        tie_word_embeddings=True,
        **_QWEN_IDS,
        text_config=dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            vocab_size=151936,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            hidden_act="silu",
            tie_word_embeddings=True,
            use_sliding_window=False,
            rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
        ),
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            hidden_act="silu",
            in_channels=3,
            tokens_per_second=2,
        ),
    ),
    "qwen3-vl-2b": dict(
        model_type="qwen3_vl",
        tie_word_embeddings=True,
        **{k: v for k, v in _QWEN_IDS.items() if "bos" not in k},
        text_config=dict(
            hidden_size=2048,
            intermediate_size=6144,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            vocab_size=151936,
            max_position_embeddings=262144,
            rms_norm_eps=1e-6,
            hidden_act="silu",
            tie_word_embeddings=True,
            rope_parameters={
                "rope_type": "default",
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
                "rope_theta": 5000000.0,
            },
        ),
        vision_config=dict(
            depth=24,
            hidden_size=1024,
            intermediate_size=4096,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=2304,
            deepstack_visual_indexes=[5, 11, 17],
            hidden_act="gelu_pytorch_tanh",
            in_channels=3,
        ),
    ),
    "smolvlm-256m": dict(
        model_type="idefics3",
        tie_word_embeddings=False,
        image_token_id=49190,
        scale_factor=4,
        text_config=dict(
            model_type="llama",
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            head_dim=64,
            vocab_size=49280,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            hidden_act="silu",
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
            pad_token_id=2,
        ),
        vision_config=dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=512,
            patch_size=16,
            num_channels=3,
            hidden_act="gelu_pytorch_tanh",
        ),
    ),
}
# processor settings that set the token counts (preprocessor_config.json of the same repositories)
PIXELS = {
    "qwen2.5-vl-3b": dict(min_pixels=3136, max_pixels=12845056),
    "qwen3-vl-2b": dict(min_pixels=65536, max_pixels=16777216),
    "smolvlm-256m": dict(longest_edge=2048, tile=512),
}
NAMES = tuple(PUBLISHED)


def real_config(name: str):
    """The transformers config of a published model, from the values above."""
    from transformers import AutoConfig

    if name not in PUBLISHED:
        raise ValueError(f"no published configuration named {short(name)}; known: {', '.join(NAMES)}")
    values = copy.deepcopy(PUBLISHED[name])
    return AutoConfig.for_model(values.pop("model_type"), **values)


def build_real(name_or_config, device: "str | torch.device" = "meta", dtype: "torch.dtype | None" = None):
    """The model of a published configuration (or a config object): on "meta" no memory is used; elsewhere the
    weights are random (transformers' init) in `dtype`. Build one large model at a time and free it."""
    import torch
    from transformers import AutoModelForImageTextToText

    cfg = real_config(name_or_config) if isinstance(name_or_config, str) else name_or_config
    cfg._attn_implementation = "sdpa"
    old = torch.get_default_dtype()
    try:
        if dtype is not None:
            torch.set_default_dtype(dtype)  # allocate in dtype: no fp32 copy of a 3B model on the way
        with torch.device(device):
            model = AutoModelForImageTextToText.from_config(cfg)
    finally:
        torch.set_default_dtype(old)
    return model.eval()


# what gpu_check.sh and the benchmarks show the real shapes: a 448 px main image (1024 px for SmolVLM's 512 px
# tiles: 2 x 2 tiles and the global view) and crops of up to 336 px (one 512 px tile)
REAL_VIEWS = {
    "qwen2.5-vl-3b": dict(
        min_pixels=224 * 224, max_pixels=448 * 448, crop_min_pixels=112 * 112, crop_max_pixels=336 * 336
    ),
    "qwen3-vl-2b": dict(
        min_pixels=224 * 224, max_pixels=448 * 448, crop_min_pixels=128 * 128, crop_max_pixels=352 * 352
    ),
    "smolvlm-256m": dict(
        min_pixels=512 * 512, max_pixels=1024 * 1024, crop_min_pixels=512 * 512, crop_max_pixels=512 * 512
    ),
}


def real_policy(name: str, device: "str | torch.device" = "cpu", dtype: "torch.dtype | None" = None, view=None):
    """A Policy at a published shape with random weights and r3-tiny's tokenizer (SmolVLM's special tokens for
    SmolVLM): the special-token ids in the config are the tokenizer's, the embedding keeps its published size
    (the rows no token uses are never sampled). For speed and memory checks, not for answers."""
    import copy as _copy

    from ..core.prompt import PromptConfig
    from ..core.regions import ViewConfig
    from .policy import Policy, build_image_processor
    from .tiny import _tile_processor
    from .tokenizer import build_tokenizer

    smol = PUBLISHED[name]["model_type"] == "idefics3"
    tok = build_tokenizer(family="smolvlm" if smol else "qwen")
    cfg = real_config(name)
    if smol:
        cfg.image_token_id = tok.convert_tokens_to_ids("<image>")
        cfg.text_config.pad_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    else:
        for key, token in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        ):
            setattr(cfg, key, tok.convert_tokens_to_ids(token))
    model = build_real(cfg, device=device, dtype=dtype)
    view = view or ViewConfig(**_copy.deepcopy(REAL_VIEWS[name]))
    if smol:
        side = int(cfg.vision_config.image_size)
        improc = _tile_processor(view.with_factor(side), side)
    else:
        vc = cfg.vision_config
        improc = build_image_processor(view, int(vc.patch_size), int(vc.spatial_merge_size))
    return Policy(
        model,
        tok,
        improc,
        view,
        PromptConfig(chat="smolvlm" if smol else "chatml"),
        {"kind": "random weights at a published shape", "name": name},
    )
