"""Gradient attribution onto the main image's patches: integrated gradients and gradient x input (captum).

The attributed input is the main image's token embeddings as the text decoder receives them (one per
merged cell, `Stream.main_embeds`); the target is the summed log-prob of chosen tokens (the box's digits,
the read, the answer: `stream.target_positions`). A cell's score is its attribution summed over the
embedding dimension (signed: > 0 pushed the target up). Integrated gradients integrate from the embeddings
of a blank (mid-grey) main image, the same counterfactual the patching and the faithfulness curves use, in
`chunk` rows at a time (captum's `internal_batch_size`), so memory is that of `chunk` forward-and-backward
passes whatever the number of steps; with `recompute`, each decoder layer's activations are recomputed in the
backward pass (transformers' gradient checkpointing, switched on for the call only), so the peak holds one layer's
activations instead of every layer's, for about one more forward per pass. Qwen3-VL's DeepStack features stay at
their clean values (the attribution is to the decoder's input embedding).
Parameters get no gradient (`hooks.frozen`).
captum is an optional dependency: `pip install r3lab[explain]`.
"""

from __future__ import annotations

import contextlib
import math
from functools import partial
from typing import Sequence

import torch
import torch.utils.checkpoint

from ..core.settings import short
from .contract import Call, MethodResult
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


def attribute(
    stream: Stream,
    positions: Sequence[int],
    method: str,
    baseline: torch.Tensor | None = None,
    steps: int = 16,
    chunk: int = 4,
    recompute: bool = False,
) -> torch.Tensor:
    """(rows, cols) attribution of the main image's cells to the summed log-prob of the tokens at `positions`.

    method: "integrated_gradients" (from `baseline`, (n, d) embeddings: `explain` passes a blank main image's;
    None integrates from zeros, a path RMSNorm makes so curved that completeness needs many more steps; `steps`
    Gauss-Legendre points, `chunk` rows per pass) or "gradient_x_input" (one forward-and-backward).
    recompute: recompute each decoder layer in the backward pass (less memory, about
    1.4x the time; `benchmarks/results/explain.json`).
    """
    if method not in GRADIENT_METHODS:
        raise ValueError(f"method={short(method)}: choose from {GRADIENT_METHODS}")
    if why := captum_missing():
        raise ImportError(why)
    if not positions:
        raise ValueError("no target tokens to attribute to")
    if steps < 1 or chunk < 1:
        raise ValueError(f"steps={short(steps)} and chunk={short(chunk)} must be >= 1")
    from captum.attr import InputXGradient, IntegratedGradients

    x = stream.main_embeds()[None].detach()
    f = _target_fn(stream, positions)
    model = stream.parts.model
    was = model.training
    model.eval()
    try:
        with frozen(model), torch.enable_grad(), _recomputing(model) if recompute else contextlib.nullcontext():
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


@contextlib.contextmanager
def _recomputing(model: torch.nn.Module):
    """transformers' gradient checkpointing on the decoder layers for the block, their state restored after."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no checkpointable decoder layers: use recompute=False")
    if drop := [n for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0] + [
        f"config.{k}" for k in ("attention_dropout", "hidden_dropout") if (getattr(model.config, k, 0) or 0) > 0
    ]:
        raise ValueError(
            f"recompute runs the layers in training mode, and {drop[:3]} would drop activations: use recompute=False"
        )
    saved = [(m, m.gradient_checkpointing, m.training, m.__dict__.get("_gradient_checkpointing_func")) for m in layers]
    try:
        for m in layers:  # transformers recomputes only in training mode; with no dropout that changes nothing else
            m.gradient_checkpointing = True
            m._gradient_checkpointing_func = partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
            m.train(True)
        yield
    finally:
        for m, on, training, func in saved:
            m.gradient_checkpointing = on
            m.train(training)
            if func is None:
                m.__dict__.pop("_gradient_checkpointing_func", None)
            else:
                m._gradient_checkpointing_func = func


def run(name: str, call: Call) -> list[MethodResult]:
    """`explain`'s gradient methods for one crop call: a map per target (`METHODS["gradient_x_input"]`, ...)."""
    cfg, out = call.config, []
    if why := captum_missing():
        return [MethodResult(name, t, available=False, reason=why) for t in cfg.targets]
    for t in cfg.targets:
        if not call.positions[t]:
            out.append(MethodResult(name, t, available=False, reason=f"the trajectory has no {t} tokens for this crop"))
            continue
        g = attribute(
            call.stream,
            call.positions[t],
            name,
            baseline=call.blank.main_embeds(),
            steps=cfg.steps,
            chunk=cfg.chunk,
            recompute=cfg.recompute,
        )
        out.append(
            MethodResult(name, t, map=g.tolist(), data={"steps": cfg.steps} if name == "integrated_gradients" else {})
        )
    return out
