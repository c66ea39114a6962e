"""LoRA (and QLoRA) adapters through peft: which layers each family adapts, wrapping, saving, merging.

`LoRAConfig` is the one settings object (nested as `lora` in the training configs: `--lora-r`,
`--lora-alpha`, ...). `add_lora(policy, cfg)` wraps `policy.model` in a `peft.PeftModel`; the LoRA layers
are injected into the model's own modules, so `base_model(policy.model)` (the transformers model,
adapters live) is what the engine, scoring and attention capture call. An adapter checkpoint holds
`adapter_model.safetensors` + `adapter_config.json` beside r3lab.json, whose `meta["base"]` names the
folder of the frozen base weights; `load_policy` rebuilds the wrapped model from both, and
`merge(policy)` folds the adapters in (`r3lab export --merge`: a plain folder any loader reads).
peft and bitsandbytes are imported only when used (`pip install r3lab[lora]`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.settings import short

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"  # peft's file names (peft.utils.constants)
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PARTS = ("lm", "vision", "merger")

# The linear layers LoRA adapts, per model_type and part: regexes peft matches in full against module
# names (`LoraConfig.target_modules` as a str). Read from transformers' modelling files: Qwen2.5-VL's vision
# MLP is gated (gate/up/down), Qwen3-VL's and Qwen3.5's is linear_fc1/fc2 with DeepStack mergers, Qwen3.5's
# linear-attention layers project through in_proj_* / out_proj, Idefics3/SmolVLM is a SigLIP encoder
# (q/k/v/out_proj, fc1/fc2) with a one-layer connector. lm_head and the embeddings are never adapted.
_LM = r"model\.(language_model|text_model)\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj{})"
_QWEN_VISION = r"model\.visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.({}))"
TARGETS = {
    "qwen2_vl": {
        "lm": _LM.format(""),
        "vision": _QWEN_VISION.format("fc1|fc2"),
        "merger": r"model\.visual\.merger\.mlp\.(0|2)",
    },
    "qwen2_5_vl": {
        "lm": _LM.format(""),
        "vision": _QWEN_VISION.format("gate_proj|up_proj|down_proj"),
        "merger": r"model\.visual\.merger\.mlp\.(0|2)",
    },
    "qwen3_vl": {
        "lm": _LM.format(""),  # the DeepStack mergers train with the vision tower (train.optim.group_of)
        "vision": "("
        + _QWEN_VISION.format("linear_fc1|linear_fc2")
        + r"|model\.visual\.deepstack_merger_list\.\d+\.linear_fc(1|2))",
        "merger": r"model\.visual\.merger\.linear_fc(1|2)",
    },
    "qwen3_5": {
        "lm": _LM.format(r"|linear_attn\.(in_proj_\w+|out_proj)"),
        "vision": _QWEN_VISION.format("linear_fc1|linear_fc2"),
        "merger": r"model\.visual\.merger\.linear_fc(1|2)",
    },
    "idefics3": {
        "lm": _LM.format(""),
        "vision": r"model\.vision_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc(1|2))",
        "merger": r"model\.connector\.modality_projection\.proj",
    },
}
TARGETS["smolvlm"] = TARGETS["idefics3"]


@dataclass
class LoRAConfig:
    """LoRA adapters for training (peft). r = 0 trains the full model."""

    r: int = 0
    """adapter rank; 0 = no adapters (full fine-tuning of the unfrozen groups)"""
    alpha: float = 16.0
    """LoRA scaling numerator: updates are scaled by alpha / r"""
    dropout: float = 0.0
    """dropout on the adapter input"""
    targets: str = "lm"
    """parts that get adapters, comma-separated: lm, vision, merger (e.g. "lm,merger")"""
    bits: int = 0
    """4 = QLoRA: the frozen base loaded in 4-bit NF4 (needs bitsandbytes and a CUDA GPU); 0 = off"""

    def __post_init__(self):
        self.validate()

    def validate(self) -> "LoRAConfig":
        for name, ok in (
            ("r", isinstance(self.r, int) and not isinstance(self.r, bool) and 0 <= self.r <= 4096),
            ("alpha", isinstance(self.alpha, (int, float)) and 0 < self.alpha < 1e6),
            ("dropout", isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1),
            ("bits", self.bits in (0, 4)),
        ):
            if not ok:
                raise ValueError(
                    f"LoRAConfig.{name} = {short(getattr(self, name))} is not allowed: r is an integer in "
                    "[0, 4096], alpha a number > 0, dropout in [0, 1), bits 0 or 4"
                )
        parts = self.parts
        if not parts or any(p not in PARTS for p in parts):
            raise ValueError(
                f"LoRAConfig.targets = {short(self.targets)}: name parts from {', '.join(PARTS)}, "
                "comma-separated (e.g. 'lm' or 'lm,vision,merger')"
            )
        if self.bits and not self.r:
            raise ValueError("LoRAConfig.bits = 4 (QLoRA) trains adapters on a 4-bit base: set r > 0 too")
        return self

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in str(self.targets).split(",") if p.strip())

    @property
    def enabled(self) -> bool:
        return self.r > 0


# -- the model under the adapters -----------------------------------------------------------------
def is_adapted(model) -> bool:
    """Is `model` a peft wrapper (adapters attached)?"""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def base_model(model: "torch.nn.Module") -> "torch.nn.Module":
    """The transformers model under a peft wrapper (its LoRA layers live inside it), else `model` itself."""
    return model.get_base_model() if is_adapted(model) else model


def target_regex(model_type: str, parts=("lm",)) -> str:
    """peft's `target_modules` for `parts` of a `model_type` (one regex, matched in full)."""
    if model_type not in TARGETS:
        raise ValueError(f"no LoRA targets known for model_type {short(model_type)}; known: {', '.join(TARGETS)}")
    return "(" + "|".join(TARGETS[model_type][p] for p in parts) + ")"


def require_peft():
    """peft, or an ImportError naming the extra."""
    if importlib.util.find_spec("peft") is None:
        raise ImportError("LoRA needs peft, which is not installed: pip install 'r3lab[lora]' (peft>=0.17,<1)")
    import peft

    return peft


def qlora_problem() -> str:
    """Why QLoRA cannot run here ('' when it can): it needs bitsandbytes and a CUDA GPU."""
    import torch

    missing = [
        what
        for what, ok in (
            (
                "the bitsandbytes package (pip install bitsandbytes)",
                importlib.util.find_spec("bitsandbytes") is not None,
            ),
            ("a CUDA GPU", torch.cuda.is_available()),
        )
        if not ok
    ]
    return "" if not missing else "QLoRA (bits=4) needs " + " and ".join(missing) + ", missing here"


def quantization_config(bits: int):
    """transformers' BitsAndBytesConfig for a QLoRA base (NF4, double quantisation, bf16 compute)."""
    if bits != 4:
        raise ValueError(f"bits = {short(bits)}: QLoRA loads the base in 4 bits (bits=4) or not at all (0)")
    if why := qlora_problem():
        raise ValueError(why + "; train LoRA on a bf16 base instead (--lora-bits 0)")
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


# -- wrapping, merging -----------------------------------------------------------------------------
def add_lora(policy, cfg: LoRAConfig) -> object:
    """Wrap `policy.model` with fresh LoRA adapters (in place; base weights frozen); returns the policy."""
    cfg.validate()
    if not cfg.enabled:
        return policy
    if is_adapted(policy.model):
        raise ValueError(
            "this policy already carries LoRA adapters: continue training them (leave lora.r as saved), "
            "or merge them first (r3lab export --merge) to start new ones"
        )
    quantized = bool(getattr(policy.model, "is_loaded_in_4bit", False))
    if cfg.bits == 4 and not quantized:
        if why := qlora_problem():
            raise ValueError(why + "; use plain LoRA (--lora-bits 0) on this machine")
        raise ValueError(
            "QLoRA (bits=4) trains on a base loaded in 4 bits: load the policy with "
            "load_policy(path, bits=4) (the CLI does this for --lora-bits 4)"
        )
    peft = require_peft()
    model_type = policy.model.config.model_type
    lcfg = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        bias="none",
        target_modules=target_regex(model_type, cfg.parts),
    )
    release_engine(policy)  # the base model's static buffers and graphs: the wrapped model needs its own
    if quantized:
        policy.model = peft.prepare_model_for_kbit_training(policy.model, use_gradient_checkpointing=False)
    policy.model = peft.get_peft_model(policy.model, lcfg)
    policy.meta = dict(
        policy.meta,
        lora={"r": cfg.r, "alpha": cfg.alpha, "dropout": cfg.dropout, "targets": ",".join(cfg.parts), "bits": cfg.bits},
    )
    return policy


def load_adapter(policy, folder, trainable: bool = False):
    """Attach the adapter saved in `folder` to `policy.model` (its base); returns the policy."""
    peft = require_peft()
    release_engine(policy)
    policy.model = peft.PeftModel.from_pretrained(policy.model, str(folder), is_trainable=trainable)
    return policy


def adapter_state(model) -> dict:
    """The adapter tensors (what adapter_model.safetensors holds)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)


def set_adapter_state(model, tensors: dict) -> None:
    """Load adapter tensors into an adapted model; ValueError when they do not fit."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, tensors)
    bad = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if bad:
        raise ValueError(f"adapter tensors {bad[:3]} do not fit this model's adapters (another rank or targets?)")


def merge(policy):
    """Fold the adapters into the base weights (peft's merge_and_unload): a plain model again."""
    if not is_adapted(policy.model):
        return policy
    if getattr(base_model(policy.model), "is_loaded_in_4bit", False):
        raise ValueError(
            "a QLoRA policy's base is 4-bit: load the base in bf16 (load_policy(path, dtype='bfloat16')) "
            "and attach the adapter to it before merging"
        )
    release_engine(policy)
    policy.model = policy.model.merge_and_unload()
    policy.meta = {k: v for k, v in policy.meta.items() if k not in ("lora", "base")}
    return policy


def release_engine(policy) -> None:
    """Drop what the rollout engine keeps for the policy's model (`Policy.engine_state`: static KV buffers, captured
    graphs): a change of adapters makes another model of it, and the old buffers would stay allocated beside the new."""
    state = getattr(policy, "engine_state", None)
    if state:
        state.clear()


def trainable_names(model) -> set[str]:
    """Names of the parameters an adapted model trains (its adapters)."""
    return {n for n, p in model.named_parameters() if "lora_" in n}
