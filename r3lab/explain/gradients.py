"""Gradient attribution onto the main image's patches: integrated gradients and gradient x input (captum).

The attributed input is the main image's token embeddings as the text decoder receives them (one per
merged cell, `Stream.main_embeds`); the target is the summed log-prob of chosen tokens (the box's digits,
the read, the answer: `stream.target_positions`). A cell's score is its attribution summed over the
embedding dimension (signed: > 0 pushed the target up). Integrated gradients integrate from the embeddings
of a blank (mid-grey) main image, the same counterfactual the patching and the faithfulness curves use, in
`chunk` rows at a time (captum's `internal_batch_size`), so memory is that of `chunk` forward-and-backward
passes whatever the number of steps. Qwen3-VL's DeepStack features stay at their clean values (the
attribution is to the decoder's input embedding). Parameters get no gradient (`hooks.frozen`).
captum is an optional dependency: `pip install r3lab[explain]`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .hooks import frozen
from .stream import Stream

GRADIENT_METHODS = ("integrated_gradients", "gradient_x_input")


def captum_missing() -> str | None:
    """Why captum cannot be used here, or None."""
    try:
        import captum.attr  # noqa: F401
    except ImportError as e:
        return f"captum is not installed ({e}): pip install 'r3lab[explain]'"
    return None


def _target_fn(stream: Stream, positions: Sequence[int]):
    def f(x: torch.Tensor) -> torch.Tensor:  # (k, n, d) -> (k,)
        return stream.score(stream.with_main(x), positions)
    return f


def attribute(stream: Stream, positions: Sequence[int], method: str, baseline: torch.Tensor | None = None,
              steps: int = 16, chunk: int = 4) -> torch.Tensor:
    """(rows, cols) attribution of the main image's cells to the summed log-prob of the tokens at `positions`.

    method: "integrated_gradients" (from `baseline`, (n, d) embeddings: `explain` passes a blank main image's;
    None integrates from zeros, a path RMSNorm makes so curved that completeness needs many more steps; `steps` Gauss-Legendre points, `chunk` rows per pass) or "gradient_x_input"
    (one forward-and-backward).
    """
    if method not in GRADIENT_METHODS:
        raise ValueError(f"method={method!r}: choose from {GRADIENT_METHODS}")
    if why := captum_missing():
        raise ImportError(why)
    if not positions:
        raise ValueError("no target tokens to attribute to")
    if steps < 1 or chunk < 1:
        raise ValueError(f"steps={steps} and chunk={chunk} must be >= 1")
    from captum.attr import InputXGradient, IntegratedGradients

    x = stream.main_embeds()[None].detach()
    f = _target_fn(stream, positions)
    model = stream.parts.model
    was = model.training
    model.eval()
    try:
        with frozen(model), torch.enable_grad():
            if method == "gradient_x_input":
                attr = InputXGradient(f).attribute(x.clone().requires_grad_(True))
            else:
                base = (baseline if baseline is not None else torch.zeros_like(x[0]))[None].to(x)
                attr = IntegratedGradients(f).attribute(x, baselines=base, n_steps=steps, internal_batch_size=chunk)
    finally:
        model.train(was)
    cells = attr[0].float().sum(-1).detach().cpu()
    if not torch.isfinite(cells).all():
        raise FloatingPointError(f"{method} produced non-finite attributions (overflow in {x.dtype}?)")
    return cells.reshape(stream.grid)


def ig_passes(steps: int, chunk: int) -> int:
    """Forward-and-backward passes integrated gradients makes (each of `chunk` rows at most)."""
    return math.ceil(steps / chunk)
