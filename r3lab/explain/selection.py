"""What an attention capture keeps (`CaptureConfig`): which text layers (full attention only: a hybrid model's linear
layers have no matrix), which heads, which query rows, and where each image's tokens lie in a row."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..core.settings import short


@dataclass
class CaptureConfig:
    """What one capture keeps. Cost: layers x heads x queries x image tokens floats."""

    layers: Sequence[int] | Callable[[int], bool] | str = (-1,)  # text layers (< 0: from the end), a predicate or "all"
    heads: Sequence[int] | None = None  # query heads to keep; None keeps all
    queries: object = "all"  # "all" | "text" | "last" | int (last n) | positions | bool mask | callable(ids)->positions
    rollout: bool = False  # also keep each selected layer's head-mean L x L matrix (needed for layers="rollout")


def text_config(model):
    return model.config.get_text_config()


def attention_modules(model) -> dict[int, int]:
    """id(attention module) -> layer index, for the text decoder's self-attention modules."""
    n = text_config(model).num_hidden_layers
    out = {}
    for name, mod in model.named_modules():
        idx = getattr(mod, "layer_idx", None)
        if (
            idx is not None
            and not ("visual" in name or "vision_model" in name)
            and hasattr(mod, "q_proj")
            and 0 <= idx < n
        ):
            out[id(mod)] = int(idx)
    return out


def resolve_layers(spec, n: int) -> list[int]:
    if spec == "all":
        return list(range(n))
    if callable(spec):
        return [i for i in range(n) if spec(i)]
    if isinstance(spec, int):
        spec = [spec]
    out = []
    for i in spec:
        if not -n <= int(i) < n:
            raise ValueError(
                f"layer {short(i)} does not exist: the text decoder has {n} layers (use 0..{n - 1} or -1..-{n})"
            )
        out.append(int(i) % n)
    return sorted(set(out))


def full_attention_only(tc, spec, layers: list[int]) -> list[int]:
    """A hybrid model (Qwen3.5) has attention matrices in its full-attention layers only: "all" and predicates
    keep those, with a warning that says so; a linear-attention layer asked for by number is an error."""
    kinds = list(getattr(tc, "layer_types", None) or [])
    linear = {i for i, t in enumerate(kinds) if t == "linear_attention"}
    if not linear:
        return layers
    full = [i for i in range(len(kinds)) if i not in linear]
    dropped = [i for i in layers if i in linear]
    if dropped and (spec == "all" or callable(spec)):
        warnings.warn(
            f"capture_attention reads only the full-attention layers {full} of this hybrid model: layers "
            f"{dropped} are Gated-DeltaNet linear attention, which forms no attention matrix",
            stacklevel=4,
        )
        return [i for i in layers if i not in linear]
    if dropped:
        raise ValueError(
            f"layers {dropped} are Gated-DeltaNet linear-attention layers, which form no attention matrix "
            f"to capture; this model's full-attention layers are {full}"
        )
    return layers


def resolve_queries(spec, ids: torch.Tensor, real: torch.Tensor, image_id: int) -> torch.Tensor:
    """Query positions (in the padded row) for one row of ids; `real` is its attention mask."""
    pos = torch.nonzero(real, as_tuple=True)[0]
    start = int(pos[0]) if len(pos) else 0
    if isinstance(spec, str):
        if spec == "all":
            return pos
        if spec == "text":
            return pos[ids[pos] != image_id]
        if spec == "last":
            return pos[-1:]
        raise ValueError(
            f"queries={short(spec)}: use 'all', 'text', 'last', an int, positions, a bool mask or a callable"
        )
    if callable(spec):
        spec = spec(ids[pos])
    if isinstance(spec, int):
        return pos[-spec:]
    t = torch.as_tensor(spec)
    if t.dtype == torch.bool:
        if t.numel() != len(pos):
            raise ValueError(f"a boolean query mask must have one entry per token ({len(pos)}), got {t.numel()}")
        return pos[t.reshape(-1).to(pos.device)]
    t = t.reshape(-1).long()
    if len(t) and (t.min() < 0 or t.max() >= len(pos)):
        raise ValueError(f"query positions must lie in 0..{len(pos) - 1}, got {t.min().item()}..{t.max().item()}")
    return t.to(pos.device) + start


def image_spans(ids: torch.Tensor, image_id: int) -> list[tuple[int, int]]:
    """[start, end) token spans of each run of image tokens."""
    is_img = (ids == image_id).tolist() + [False]
    spans, s = [], None
    for i, v in enumerate(is_img):
        if v and s is None:
            s = i
        elif not v and s is not None:
            spans.append((s, i))
            s = None
    return spans
