"""`Policy`: a model with its tokenizer, image processor, pixel budgets and prompt; `load_policy`.

One handle for r3-tiny (`r3lab.model.tiny`) and for any local Qwen2-VL / Qwen2.5-VL / Qwen3-VL folder.
The processor is always assembled from its parts: without torchvision `AutoProcessor` silently
returns a bare tokenizer and the stock processor cannot be built (DEVELOPERS.md, Set-up).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable

import torch
from PIL import Image
from transformers import Qwen2_5_VLProcessor

from ..core.crop_calls import CallStyle
from ..core.files import given_path, plain_mode
from ..core.prompt import PromptConfig
from ..core.regions import ViewConfig
from ..core.settings import short
from .families import IM_END, rules_for, translate_end
from .folder import EXPECTED_FILES, LATEST, R3_FILE, R3_FORMAT, adapter_base, check_files, default_view, read_extra
from .patch_linear import linear_patch_embeds
from .weights import check_coverage, read_json, strict_from_pretrained

# model_type values load_policy accepts -> the frame their crop calls default to when a folder has no
# r3lab.json: Qwen2.5-VL writes model-input pixels; Qwen3-VL and Qwen3.5 write relative 0-1000. Qwen2-VL's own
# grounding was relative too, but r3lab has always read its bbox_2d calls as pixels: kept, as it was.
# Idefics3 / SmolVLM has no grounding format of its own: absolute pixels, bare JSON, as r3-tiny.
FAMILY_COORDS = {
    "qwen2_vl": "absolute",
    "qwen2_5_vl": "absolute",
    "qwen3_vl": "relative",
    "qwen3_5": "relative",
    "idefics3": "absolute",
    "smolvlm": "absolute",
}
FAMILIES = tuple(FAMILY_COORDS)
SUPPORTED = "Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5, SmolVLM (Idefics3)"  # FAMILIES, as users know them


class R3Processor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without the video slot (which needs torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


@dataclass
class Policy:
    """A model with its tokenizer, image processor, pixel budgets and prompt layout."""

    model: torch.nn.Module
    tokenizer: object
    image_processor: object
    view: ViewConfig = field(default_factory=ViewConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    meta: dict = field(default_factory=dict)  # provenance: recipe, seeds, card numbers
    engine_state: dict = field(default_factory=dict, repr=False, compare=False)  # the engine's pool (engine.pool)

    def __post_init__(self):
        self.rules = rules_for(self.model.config.model_type)  # the family's image, position and chat rules
        linear_patch_embeds(self.model)  # the same map, faster on CPU (r3lab.model.patch_linear)
        self._geometry = self.rules.geometry(self.model.config)
        self.view = self.view.with_factor(self.patch_size * self.merge_size)
        if self.prompt.chat != self.rules.chat:
            raise ValueError(
                f"PromptConfig.chat = {self.prompt.chat!r}, but a {self.model.config.model_type} model "
                f"speaks {self.rules.chat!r}: build the prompt with chat={self.rules.chat!r}"
            )
        tok = self.tokenizer
        self._end = self.rules.end_token()
        self._ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|im_start|>", self._end, "<|endoftext|>")}
        self._markers = self.rules.markers(self)

    # -- geometry and special ids --------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        """Qwen: the vision patch side; Idefics3 / SmolVLM: the tile side (grids count tiles)."""
        return self._geometry[0]

    @property
    def merge_size(self) -> int:
        return self._geometry[1]

    @property
    def position_dims(self) -> int:
        """3 for M-RoPE (Qwen), 1 for 1-D positions (Idefics3 / SmolVLM)."""
        return self.rules.position_dims

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    @property
    def vision_start_id(self) -> int:
        return self._markers[0]

    @property
    def vision_end_id(self) -> int:
        return self._markers[1]

    @property
    def eos_id(self) -> int:
        """The token that ends the assistant's turn (`<|im_end|>`; SmolVLM: `<end_of_utterance>`)."""
        return int(self._ids[self._end])

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self._ids["<|endoftext|>"])

    @property
    def vision_token_ids(self) -> set[int]:
        """Every id that only images may carry (sampling never emits them; scripts may not hold them)."""
        ids = {self.image_token_id, self.vision_start_id, self.vision_end_id}
        vid = getattr(self.model.config, "video_token_id", None)
        ids |= {int(vid)} if vid is not None else set()
        if self.rules.chat == "smolvlm":
            names = ["<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
            unk = getattr(self.tokenizer, "unk_token_id", None)
            ids |= {int(i) for i in self.tokenizer.convert_tokens_to_ids(names) if i is not None and i != unk}
        return ids

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def context_length(self) -> int | None:
        """The most positions the model was built for (its text config's max_position_embeddings)."""
        cfg = self.model.config
        n = getattr(getattr(cfg, "text_config", None) or cfg, "max_position_embeddings", None)
        return int(n) if n else None

    # -- text and images -----------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; r3lab's `<|im_end|>` becomes the family's end of turn."""
        return list(self.tokenizer.encode(translate_end(text, self._end), add_special_tokens=False))

    def decode(self, ids: Iterable[int]) -> str:
        text = self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return text if self._end == IM_END else text.replace(self._end, IM_END)

    def encode_images(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels and grids for images already at their model-input size: Qwen's patches with (t, h, w)
        grids; SmolVLM's tiles and global views, flat, with (1, rows, cols) grids."""
        for im in images:
            f = self.view.factor
            if im.width % f or im.height % f:
                raise ValueError(
                    f"image of size {im.size} is not at a model-input size (multiples of {f}); "
                    "resize it with r3lab.core.smart_resize first"
                )
        return self.rules.encode_images(self, images)

    def vision_inputs(self, pixel_values: torch.Tensor, grids) -> dict:
        """The forward's image arguments for `encode_images`'s pixels and grids, on the policy's device."""
        return self.rules.vision_inputs(pixel_values, grids, self.device)

    def positions(self, ids, grids, start: int = 0) -> tuple[torch.Tensor, int]:
        """Positions (D, L) of one row of ids from `start` and the next free one (D: `position_dims`)."""
        return self.rules.positions(self, ids, grids, start)

    def image_token_count(self, grid_thw) -> int:
        return sum(i == self.image_token_id for i in self.image_ids(grid_thw))

    def image_ids(self, grid_thw) -> list[int]:
        """An image's tokens: Qwen `<|vision_start|>`, one `<|image_pad|>` per merged token, `<|vision_end|>`;
        SmolVLM its tiles and global view (`r3lab.model.families`)."""
        return self.rules.image_ids(self, grid_thw)

    def processor(self):
        """The family's processor over this tokenizer and image processor (for chat-template users)."""
        if self.rules.chat == "smolvlm":
            from transformers import Idefics3Processor

            return Idefics3Processor(
                self.image_processor,
                self.tokenizer,
                image_seq_len=self.rules.tile_tokens(self),
                chat_template=self.tokenizer.chat_template,
            )
        return R3Processor(self.image_processor, self.tokenizer, chat_template=self.tokenizer.chat_template)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """`save_pretrained` for the model, tokenizer and image processor, plus r3lab.json.

        A policy with LoRA adapters writes its adapter (peft's adapter_model.safetensors) and names its
        base folder in r3lab.json's meta["base"]; without one yet, the base is written to `path/base`.
        """
        from .adapters import is_adapted

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = self.meta
        if is_adapted(self.model) and not meta.get("base"):
            save_base(self, path / "base")
            meta = dict(meta, base="base")
        elif is_adapted(self.model):  # written relative when it sits beside the folder (a run moves as a whole)
            base = Path(meta["base"]).resolve()
            near = base.is_relative_to(path.resolve().parent)
            meta = dict(meta, base=os.path.relpath(base, path.resolve()) if near else str(base))
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)
        plain_mode(*path.glob("*.safetensors"))
        extra = {"format_version": R3_FORMAT, "view": asdict(self.view), "prompt": asdict(self.prompt), "meta": meta}
        (path / R3_FILE).write_text(json.dumps(extra, indent=2))
        return path


def save_base(policy: Policy, folder: str | os.PathLike) -> Path:
    """Write the frozen base under an adapted policy as a plain policy folder (adapter tensors left out)."""
    from .adapters import base_model

    base = base_model(policy.model)
    # peft keeps each adapted layer's own weight as `<layer>.base_layer.weight`: the base's original key
    sd = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base.save_pretrained(folder, state_dict=sd)
    policy.tokenizer.save_pretrained(folder)
    policy.image_processor.save_pretrained(folder)
    plain_mode(*folder.glob("*.safetensors"))
    meta = {k: v for k, v in policy.meta.items() if k not in ("lora", "base", "path")}
    (folder / R3_FILE).write_text(
        json.dumps(
            {"format_version": R3_FORMAT, "view": asdict(policy.view), "prompt": asdict(policy.prompt), "meta": meta},
            indent=2,
        )
    )
    return folder


def build_image_processor(view: ViewConfig, patch_size: int = 14, merge_size: int = 2):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=view.min_pixels,
        max_pixels=view.max_pixels,
        patch_size=patch_size,
        temporal_patch_size=2,
        merge_size=merge_size,
    )


def load_policy(
    path: str | os.PathLike,
    view: ViewConfig | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
    bits: int = 0,
) -> Policy:
    """Load r3-tiny or any local Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 checkpoint folder, offline.

    `path` may also be a training run's out_dir: its `latest` checkpoint is loaded. A LoRA checkpoint
    (adapter_config.json, no config.json) loads its base (r3lab.json's meta["base"]) and attaches the
    adapter (needs peft). `bits=4` loads the base in 4-bit NF4 for QLoRA (bitsandbytes and a CUDA GPU).
    `view` overrides the pixel budgets (by default: r3lab.json if present, else the image
    processor's min/max pixels for the main image and for crops).
    """
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    path = given_path(path, "policy folder")  # "" would be the current folder: an unset variable, not a choice
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint folder at {path}: expected a local folder holding {EXPECTED_FILES}")
    if not (path / "config.json").is_file() and (path / LATEST).is_file():  # a training run's out_dir
        path = path / (path / LATEST).read_text().strip()
    if adapter_base(path) is not None:
        return _load_adapted(path, view, dtype, device, attn_implementation, bits)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} has no config.json: expected a checkpoint folder of a supported family "
            f"({SUPPORTED}) or an r3lab training run, holding {EXPECTED_FILES}"
        )
    check_files(path)
    model_type = read_json(path / "config.json").get("model_type")
    if model_type not in FAMILIES:
        raise ValueError(
            f"{path} holds a {short(model_type)} model; r3lab expects model_type "
            + ", ".join(repr(f) for f in FAMILIES)
        )
    if not any(path.glob("*.safetensors")):
        if any(path.glob("*.bin")) or any(path.glob("*.pt")):  # torch pickles: loading one can run code
            raise ValueError(
                f"{path} holds only pickled *.bin/*.pt weights; r3lab loads safetensors only. Convert "
                "them once where you trust the file: model.save_pretrained(folder) writes safetensors"
            )
        raise FileNotFoundError(f"{path} has a config but no weights: expected {EXPECTED_FILES}")
    check_coverage(path)  # the weights cover the model config.json describes: before anything is built
    kw = dict(local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, **kw)
    improc = AutoImageProcessor.from_pretrained(path, **kw)
    mkw = {}
    if dtype is not None:
        mkw["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if attn_implementation is not None:
        mkw["attn_implementation"] = attn_implementation
    if bits:
        from .adapters import quantization_config

        mkw["quantization_config"] = quantization_config(bits)
        mkw["device_map"] = {"": device or "cuda"}  # bitsandbytes places the weights itself
    model = strict_from_pretrained(AutoModelForImageTextToText, path, quantized=bool(bits), checked=True, **mkw)
    if device is not None and not bits:
        model.to(device)
    model.eval()
    extra = read_extra(path)
    try:
        if view is None and "view" in extra:
            view = ViewConfig(**{k: v for k, v in extra["view"].items() if k in {f.name for f in fields(ViewConfig)}})
        elif view is None:
            view = default_view(
                getattr(improc, "size", None) or {}, {"max_image_size": getattr(improc, "max_image_size", None)}
            )
        # r3lab.json written before frames were a setting: absolute (r3-tiny and its checkpoints were trained so);
        # a folder without one (a released checkpoint): its family's own frame and chat
        prompt = (
            PromptConfig(**extra["prompt"])
            if "prompt" in extra
            else PromptConfig(calls=CallStyle(coords=FAMILY_COORDS[model_type]), chat=rules_for(model_type).chat)
        )
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{path / R3_FILE}: its view or prompt cannot be used ({e}); fix or delete that file "
            "(without it the image processor's pixel bounds and the default prompt are used)"
        ) from None
    meta = dict(extra.get("meta", {}), path=str(path))
    return Policy(model, tok, improc, view, prompt, meta)


def _load_adapted(path: Path, view, dtype, device, attn_implementation, bits) -> Policy:
    """A LoRA checkpoint: its base loaded as any folder, the adapter attached; view/prompt/meta its own."""
    from .adapters import load_adapter

    check_files(path)
    base = adapter_base(path)
    policy = load_policy(base, view, dtype, device, attn_implementation, bits)
    load_adapter(policy, path)
    extra = read_extra(path)
    try:
        if view is None and "view" in extra:
            policy.view = ViewConfig(
                **{k: v for k, v in extra["view"].items() if k in {f.name for f in fields(ViewConfig)}}
            ).with_factor(policy.view.factor)
        if "prompt" in extra:
            policy.prompt = PromptConfig(**extra["prompt"])
    except (TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{path / R3_FILE}: its view or prompt cannot be used ({e})") from None
    policy.meta = dict(extra.get("meta", {}), path=str(path), base=str(base))
    return policy
