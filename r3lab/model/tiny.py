"""r3-tiny: a Qwen2.5-VL, Qwen3-VL, Qwen3.5 or SmolVLM (Idefics3) built from a small config, deterministic.

The language and vision towers are transformers' own classes; only the sizes and the
initialisations (`r3lab.model.inits`) are r3lab's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Iterable

import torch

from ..core.prompt import PromptConfig
from ..core.regions import ViewConfig
from ..core.settings import SEED, WHY, check_choice, check_ranges, short
from .inits import initialise
from .policy import Policy, build_image_processor
from .tokenizer import SMOLVLM_TOKENS, SPECIAL_TOKENS, build_tokenizer


@dataclass
class TinyConfig:
    """Sizes of r3-tiny (`r3lab recipe` trains a wider Qwen3-VL with patch_size=7: `replication.recipe.R3_TINY`)."""

    hidden: int = 128  # text width
    layers: int = 2  # text decoder layers
    heads: int = 4  # attention heads (head_dim = hidden / heads)
    kv_heads: int = 2  # grouped-query KV heads
    intermediate: int = 256  # text MLP width
    vision_hidden: int = 64  # vision tower width
    vision_depth: int = 2  # vision blocks
    vision_heads: int = 4
    vision_intermediate: int = 128
    patch_size: int = 14  # vision patch side (smart-resize factor = patch_size * merge_size)
    merge_size: int = 2  # spatial merge of the patch merger
    init: str = "lecun"  # "lecun": N(0, 1/fan_in) weights, scaled residual outputs; "hf": transformers' N(0, init_std)
    init_std: float = 0.02  # std of the "hf" init
    vocab_size: int = 1024  # BPE vocabulary target (bytes + merges + special tokens)
    seed: int = 0  # weights and tokenizer are a pure function of this config
    family: str = "qwen2_5_vl"  # transformers class: qwen2_5_vl | qwen3_vl (learned pos_embed, DeepStack) |
    # qwen3_5 | smolvlm (Idefics3)
    tile: int = 2  # smolvlm: tokens per tile side
    # (tile = tile * merge_size * patch_size pixels; merge_size is the pixel shuffle)
    deepstack: tuple = (0,)  # qwen3_vl: vision blocks whose features are injected into the first LM layers
    pos_init: str = "normal"  # qwen3_vl pos_embed init: "normal" (N(0, 1)) | "sincos" (2-D grid) | "fourier" (pixels)
    qk_norm_init: float = 1.0  # qwen3_vl: initial gain of the per-head q/k RMSNorms (logits scale as its square)
    numbers: str = "digits"  # "digits": one token per digit (as Qwen's tokenizers) | "whole": 0..max_number one each
    max_number: int = 255  # numbers="whole": the largest number that is one token
    number_init: str = "random"  # numbers="whole": "fourier" starts number embeddings at sin/cos of their value

    def __post_init__(self):
        """Sizes a tiny model can have, checked before anything is built (a 10^12-wide layer would never end)."""
        if isinstance(self.deepstack, list):
            self.deepstack = tuple(self.deepstack)
        width, depth, heads = (8, 8192), (1, 128), (1, 128)
        sizes = dict(
            hidden=width,
            layers=depth,
            heads=heads,
            kv_heads=heads,
            intermediate=(1, 1 << 16),
            vision_hidden=width,
            vision_depth=depth,
            vision_heads=heads,
            vision_intermediate=(1, 1 << 16),
            patch_size=(1, 64),
            merge_size=(1, 8),
            vocab_size=(258, 1 << 18),
            seed=SEED,
            tile=(1, 64),
            max_number=(0, 1 << 16),
        )
        check_ranges(
            self,
            ints=sizes,
            floats=dict(init_std=(0.0, 1.0), qk_norm_init=(0.0, 100.0)),
            open_low=("init_std", "qk_norm_init"),
            why={**dict.fromkeys(sizes, "r3-tiny is built from scratch in float32, in memory"), "seed": WHY["seed"]},
        )
        for name, choices in (
            ("family", FAMILIES),
            ("init", ("lecun", "hf")),
            ("pos_init", ("normal", "sincos", "fourier")),
            ("numbers", ("digits", "whole")),
            ("number_init", ("random", "fourier")),
        ):
            check_choice(self, name, choices)
        if (
            not isinstance(self.deepstack, tuple)
            or len(self.deepstack) > 128
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in self.deepstack)
        ):
            raise ValueError(
                f"TinyConfig.deepstack = {short(self.deepstack)} is not allowed: expected a list of "
                "vision block indices"
            )
        if self.hidden % self.heads or self.heads % self.kv_heads or self.vision_hidden % self.vision_heads:
            raise ValueError(
                f"TinyConfig: hidden ({self.hidden}) must be a multiple of heads ({self.heads}), heads of "
                f"kv_heads ({self.kv_heads}), vision_hidden ({self.vision_hidden}) of vision_heads "
                f"({self.vision_heads})"
            )
        if (n := self.parameters()) > MAX_TINY_PARAMETERS:
            raise ValueError(
                f"TinyConfig: these sizes make a model of about {n:.3g} parameters, more than the "
                f"{MAX_TINY_PARAMETERS:.0e} a tiny model built from scratch may have (it is built in "
                "float32 in memory and trained on this machine); load a real checkpoint instead"
            )

    def parameters(self) -> int:
        """About how many parameters these sizes make (embeddings, attention and MLP of both towers)."""
        text = self.layers * (4 * self.hidden**2 + 3 * self.hidden * self.intermediate)
        vision = self.vision_depth * (4 * self.vision_hidden**2 + 2 * self.vision_hidden * self.vision_intermediate)
        return self.vocab_size * self.hidden + text + vision


FAMILIES = ("qwen2_5_vl", "qwen3_vl", "qwen3_5", "smolvlm")
MAX_TINY_PARAMETERS = 10**9


def build_tiny(
    config: TinyConfig | None = None,
    view: ViewConfig | None = None,
    prompt: PromptConfig | None = None,
    corpus_lines: Iterable[str] | None = None,
    family: str | None = None,
) -> Policy:
    """A freshly initialised r3-tiny policy (deterministic for a given config); `family` overrides the config's.

    Its crop calls are absolute pixels in bare JSON whatever the family (`prompt.calls`, saved in r3lab.json):
    r3-tiny learns from nothing, and its shipped checkpoints were trained so.
    """
    cfg = config or TinyConfig()
    if family is not None:
        cfg = replace(cfg, family=family)
    smol = cfg.family == "smolvlm"
    side = cfg.patch_size * cfg.merge_size * (cfg.tile if smol else 1)  # SmolVLM's factor: the tile side
    view = (view or ViewConfig()).with_factor(side)
    if cfg.numbers not in ("digits", "whole"):
        raise ValueError(f"TinyConfig.numbers must be 'digits' or 'whole', got {short(cfg.numbers)}")
    tok = build_tokenizer(
        corpus_lines,
        cfg.vocab_size,
        cfg.max_number if cfg.numbers == "whole" else 0,
        family="smolvlm" if smol else "qwen",
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in (SMOLVLM_TOKENS if smol else SPECIAL_TOKENS)}
    head_dim = cfg.hidden // cfg.heads
    if head_dim % 2 or head_dim < 8:
        raise ValueError(f"hidden/heads = {head_dim} must be an even number >= 8 (M-RoPE splits it three ways)")
    if cfg.family == "qwen3_vl":
        model_cls, mcfg = _qwen3_vl_config(cfg, tok, ids, head_dim)
    elif cfg.family == "qwen2_5_vl":
        model_cls, mcfg = _qwen2_5_vl_config(cfg, tok, ids, head_dim)
    elif cfg.family == "qwen3_5":
        model_cls, mcfg = _qwen3_5_config(cfg, tok, ids, head_dim)
    elif smol:
        model_cls, mcfg = _smolvlm_config(cfg, tok, ids, head_dim)
    else:
        raise ValueError(
            f"TinyConfig.family must be 'qwen2_5_vl', 'qwen3_vl', 'qwen3_5' or 'smolvlm', got {short(cfg.family)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = model_cls(mcfg)
        initialise(model, cfg, tok, view)
    model.generation_config.eos_token_id = ids["<end_of_utterance>" if smol else "<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.eval()
    meta = {"kind": "r3-tiny", "tiny_config": asdict(cfg)}
    improc = _tile_processor(view, side) if smol else build_image_processor(view, cfg.patch_size, cfg.merge_size)
    prompt = replace(prompt or PromptConfig(), chat="smolvlm" if smol else "chatml")  # the family's turn format
    return Policy(model, tok, improc, view, prompt, meta)


def _tile_processor(view: ViewConfig, side: int):
    """Idefics3's image processor (PIL, no torchvision) splitting into `side`-pixel tiles plus a global view."""
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    longest = max(side, int(max(view.max_pixels, view.crop_max_pixels) ** 0.5) // side * side)
    return Idefics3ImageProcessorPil(
        do_image_splitting=True, size={"longest_edge": longest}, max_image_size={"longest_edge": side}, do_pad=True
    )


def _smolvlm_config(cfg: TinyConfig, tok, ids: dict, head_dim: int):
    """A tiny SmolVLM (transformers' Idefics3 classes): a SigLIP-style vision tower over tiles of
    tile * merge * patch pixels, a pixel shuffle of merge_size, a Llama text model with 1-D RoPE."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    text = _text_config(cfg, tok, ids, {}, head_dim=head_dim)
    text.update(model_type="llama", bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<end_of_utterance>"])
    mcfg = Idefics3Config(
        text_config=text,
        vision_config=dict(
            hidden_size=cfg.vision_hidden,
            intermediate_size=cfg.vision_intermediate,
            num_hidden_layers=cfg.vision_depth,
            num_attention_heads=cfg.vision_heads,
            image_size=cfg.patch_size * cfg.merge_size * cfg.tile,
            patch_size=cfg.patch_size,
            initializer_range=cfg.init_std,
        ),
        scale_factor=cfg.merge_size,
        image_token_id=ids["<image>"],
        tie_word_embeddings=True,
        pad_token_id=ids["<|endoftext|>"],
    )
    return Idefics3ForConditionalGeneration, mcfg


def _qwen2_5_vl_config(cfg: TinyConfig, tok, ids: dict, head_dim: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    half = head_dim // 2
    section = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]  # [16, 24, 24] at head_dim 128
    mcfg = Qwen2_5_VLConfig(
        text_config=_text_config(cfg, tok, ids, {"mrope_section": section}),
        vision_config=dict(
            depth=cfg.vision_depth,
            hidden_size=cfg.vision_hidden,
            intermediate_size=cfg.vision_intermediate,
            num_heads=cfg.vision_heads,
            patch_size=cfg.patch_size,
            spatial_merge_size=cfg.merge_size,
            temporal_patch_size=2,
            out_hidden_size=cfg.hidden,
            in_channels=3,
            window_size=cfg.patch_size * cfg.merge_size * 4,
            fullatt_block_indexes=list(range(cfg.vision_depth)),
            initializer_range=cfg.init_std,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    return Qwen2_5_VLForConditionalGeneration, mcfg


def _text_config(cfg: TinyConfig, tok, ids: dict, rope: dict, **extra) -> dict:
    """The language model's settings, shared by both families (they differ in the M-RoPE split)."""
    return dict(
        vocab_size=len(tok),
        hidden_size=cfg.hidden,
        intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", **rope, "rope_theta": 10000.0},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        initializer_range=cfg.init_std,
        **extra,
    )


def _qwen3_vl_config(cfg: TinyConfig, tok, ids: dict, head_dim: int):
    """A tiny Qwen3-VL: interleaved M-RoPE split to fit head_dim, a pos_embed grid that covers the
    largest view, DeepStack taps inside the vision depth (the defaults 8/16/24 would not exist)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    half = head_dim // 2
    section = [half - 2 * (half * 5 // 16), half * 5 // 16, half * 5 // 16]  # [24, 20, 20] at head_dim 128
    bad = [i for i in cfg.deepstack if not 0 <= i < cfg.vision_depth]
    if bad:
        raise ValueError(
            f"TinyConfig.deepstack {list(cfg.deepstack)} must index vision blocks 0..{cfg.vision_depth - 1}"
        )
    mcfg = Qwen3VLConfig(
        text_config=_text_config(
            cfg, tok, ids, {"mrope_section": section, "mrope_interleaved": True}, head_dim=head_dim
        ),
        vision_config=_qwen3_vision(cfg, deepstack_visual_indexes=list(cfg.deepstack)),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    return Qwen3VLForConditionalGeneration, mcfg


def _qwen3_vision(cfg: TinyConfig, **extra) -> dict:
    """The vision tower of a tiny Qwen3-VL or Qwen3.5 (the two share it; Qwen3-VL adds its deepstack)."""
    return dict(
        depth=cfg.vision_depth,
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_intermediate,
        num_heads=cfg.vision_heads,
        patch_size=cfg.patch_size,
        spatial_merge_size=cfg.merge_size,
        temporal_patch_size=2,
        out_hidden_size=cfg.hidden,
        in_channels=3,
        num_position_embeddings=256,
        initializer_range=cfg.init_std,
        **extra,
    )


def _qwen3_5_config(cfg: TinyConfig, tok, ids: dict, head_dim: int):
    """A tiny Qwen3.5: Gated-DeltaNet linear-attention layers with every 4th layer (and at least the last)
    full attention; rotary on a quarter of head_dim (its default), so the M-RoPE split fits that quarter."""
    try:
        from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration
    except ImportError:  # transformers older than Qwen3.5
        raise ValueError(
            "TinyConfig.family='qwen3_5' needs a transformers with Qwen3.5 (model_type 'qwen3_5'); "
            "this one has none: upgrade transformers, or use family='qwen3_vl'"
        ) from None

    rotary = head_dim // 4
    if rotary % 2 or rotary < 6:
        raise ValueError(
            f"family='qwen3_5' rotates a quarter of head_dim = {head_dim}: it must leave an even number "
            ">= 6 of dimensions for the three M-RoPE axes; raise hidden or lower heads"
        )
    half = rotary // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    kinds = [
        "full_attention" if (i + 1) % 4 == 0 or i == cfg.layers - 1 else "linear_attention" for i in range(cfg.layers)
    ]
    lin_heads = max(1, cfg.kv_heads)
    mcfg = Qwen3_5Config(
        text_config=_text_config(
            cfg,
            tok,
            ids,
            {"mrope_section": section, "mrope_interleaved": True, "partial_rotary_factor": 0.25},
            head_dim=head_dim,
            layer_types=kinds,
            linear_num_key_heads=lin_heads,
            linear_num_value_heads=lin_heads,
            linear_key_head_dim=head_dim,
            linear_value_head_dim=head_dim,
            linear_conv_kernel_dim=4,
        ),
        vision_config=_qwen3_vision(cfg),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    return Qwen3_5ForConditionalGeneration, mcfg
