"""Hooks as context managers (TransformerLens' `hooks()` style): registered on entry, removed on exit, also
when the body raises, so a failed explanation never leaves a model patched.

`hooks(fwd=[(module, fn)], pre=[(module, fn)])` is the one primitive; `text_parts` finds a vision-language
model's text decoder pieces (layers, final norm, lm_head) by their transformers names; `frozen` turns
parameter gradients off while input gradients are taken (no weight-gradient memory).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from ..model.adapters import base_model


@contextmanager
def hooks(
    fwd: Iterable[tuple[torch.nn.Module, Callable]] = (),
    pre: Iterable[tuple[torch.nn.Module, Callable]] = (),
    with_kwargs: bool = False,
):
    """Forward hooks `fn(module, args, output) -> output | None` and pre-hooks `fn(module, args) -> args | None`
    (with `with_kwargs`: `fn(module, args, kwargs[, output])`), all removed when the block ends."""
    handles = []
    try:
        for mod, fn in pre:
            handles.append(mod.register_forward_pre_hook(fn, with_kwargs=with_kwargs))
        for mod, fn in fwd:
            handles.append(mod.register_forward_hook(fn, with_kwargs=with_kwargs))
        yield handles
    finally:
        for h in handles:
            h.remove()


@dataclass
class TextParts:
    """The text decoder of a vision-language model: what the residual-stream methods hook."""

    model: torch.nn.Module  # the transformers ...ForConditionalGeneration (under LoRA: the model inside)
    inner: torch.nn.Module  # model.model: vision tower + language model
    language_model: torch.nn.Module  # the text decoder (called with inputs_embeds)
    layers: torch.nn.ModuleList  # its decoder layers; each returns the residual stream (B, L, d)
    norm: torch.nn.Module  # the final norm before lm_head
    lm_head: torch.nn.Module

    @property
    def n_layers(self) -> int:
        return len(self.layers)


def text_parts(model: torch.nn.Module) -> TextParts:
    """The text decoder's parts of a Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 model (a clear error otherwise)."""
    m = base_model(model)
    inner = getattr(m, "model", None)
    lm = getattr(inner, "language_model", None)
    layers = getattr(lm, "layers", None)
    if lm is None or layers is None or not hasattr(lm, "norm") or not hasattr(m, "lm_head"):
        raise NotImplementedError(
            f"{type(m).__name__} has no model.language_model.layers / norm / lm_head: the residual-stream methods "
            "(gradients, patching, logit lens) support the Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 families"
        )
    return TextParts(m, inner, lm, layers, lm.norm, m.lm_head)


@contextmanager
def frozen(model: torch.nn.Module):
    """Parameters without gradients inside the block (input attributions need none), restored after."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        yield model
    finally:
        for p in params:
            p.requires_grad_(True)


def first_tensor(output):
    """A decoder layer's residual stream, whether it returns a tensor or a tuple led by one."""
    return output[0] if isinstance(output, tuple) else output


def replace_first(output, new):
    return (new, *output[1:]) if isinstance(output, tuple) else new
