"""The optimiser with a learning rate per parameter group, the schedule, and one clipped step."""

from __future__ import annotations

import math

import torch

from ..core.settings import short
from ..model.adapters import is_adapted, trainable_names
from .config import TrainConfig


def group_of(name: str) -> str:
    """'vision', 'merger' or 'lm' for a parameter name (Qwen: visual / visual.merger; Idefics3 and SmolVLM:
    vision_model / connector), LoRA-wrapped names too."""
    if ".merger." in name or name.startswith("merger.") or "connector." in name:
        return "merger"
    if "visual." in name or "vision_model." in name:
        return "vision"
    return "lm"


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (or SGD) with one learning rate per group (vision / merger / lm); frozen groups get requires_grad=False."""
    lrs = {"vision": cfg.lr_vision, "merger": cfg.lr_merger, "lm": cfg.lr_lm}
    frozen = {
        "vision": cfg.freeze_vision or cfg.lr_vision == 0,
        "merger": cfg.freeze_merger or cfg.lr_merger == 0,
        "lm": cfg.lr_lm == 0,
    }
    adapters = trainable_names(model) if is_adapted(model) else None  # LoRA: only the adapters train
    if adapters is not None:
        lost = sorted({group_of(n) for n in adapters} & {g for g, f in frozen.items() if f})
        if lost:
            raise ValueError(
                f"LoRA adapters sit on the {', '.join(lost)} part(s), which the config freezes "
                "(freeze_vision / freeze_merger / a zero lr): "
                "unfreeze them or drop them from lora.targets"
            )
    buckets: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        g = group_of(name)
        p.requires_grad_(not frozen[g] and (adapters is None or name in adapters))
        if p.requires_grad:
            buckets.setdefault((g, p.ndim >= 2), []).append(p)
    if not buckets:
        raise ValueError("every parameter group is frozen: nothing to train (check freeze_* and lr_*)")
    groups = [
        {
            "params": ps,
            "lr": lrs[g],
            "base_lr": lrs[g],
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "name": f"{g}{'' if decay else '_nodecay'}",
        }
        for (g, decay), ps in sorted(buckets.items())
    ]
    kind = cfg.optimizer
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr_lm)
    if kind != "adamw":
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {short(kind)}")
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)


def lr_factor(step: int, total: int, warmup: float, schedule: str, min_ratio: float = 0.0) -> float:
    """Multiplier of each group's base lr at `step` (0-based): linear warm-up, then cosine or constant."""
    n_warm = int(round(warmup * total)) if warmup < 1 else int(warmup)
    if step < n_warm:
        return (step + 1) / n_warm
    if schedule == "constant" or total <= n_warm:
        return 1.0
    progress = min(1.0, (step - n_warm) / max(1, total - n_warm))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(opt: torch.optim.Optimizer, factor: float) -> None:
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * factor


def group_grad_norms(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Gradient norm per parameter group (vision / merger / lm): a vanishing vision norm is the
    tiny model's classic failure (research/FINDINGS.md, initialisation)."""
    sq: dict[str, float] = {}
    for g in optimizer.param_groups:
        key = g.get("name", "all").removesuffix("_nodecay")
        sq[key] = sq.get(key, 0.0) + sum(
            float(p.grad.detach().float().pow(2).sum()) for p in g["params"] if p.grad is not None
        )
    return {f"grad_norm_{k}": v**0.5 for k, v in sq.items()}


def clip_and_step(optimizer: torch.optim.Optimizer, grad_clip: float) -> dict[str, float]:
    """Clip the global grad norm (`grad_clip` > 0), step, zero grads; returns the norms before clipping."""
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    groups = group_grad_norms(optimizer)
    norm = (
        torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
        if params
        else torch.tensor(0.0)
    )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return {"grad_norm": float(norm), **groups}
