"""R-GRPO as small functions: rollout -> score -> group_advantages -> policy_loss -> optimizer step.

What differs from the released trainer, on purpose:
- the ratio is taken against the rollout's own log-probs, so `inner_epochs > 1` really moves it
  and the asymmetric clip (eps_low / eps_high) binds;
- only `model_text` tokens are in the loss (mask by provenance); images and environment notes
  are conditioning only;
- the frozen reference model exists only when `beta > 0`;
- any number of trajectories per step and per process (groups are never split over processes).

`train(policy, samples, RGRPOConfig(...))` runs the loop with a progress bar and callbacks; one
call of `train_step(state, samples)` is one rollout batch followed by `inner_epochs` updates.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ..core.batch import by_length, collate
from ..core.settings import short
from ..core.trajectory import Trajectory
from ..engine.config import RolloutConfig
from ..engine.rollouts import rollout
from ..engine.scoring import TokenScorer, token_logprobs
from ..model.adapters import is_adapted
from ..model.policy import Policy, load_policy
from . import dist
from .config import RGRPOConfig
from .loop import TrainState, batch_order, check_batch, defer_interrupt, maybe_resume, prepare, run_loop
from .metrics import MetricLog, mismatch_metrics, mismatch_sums, rollout_metrics, rollout_values
from .optim import clip_and_step, lr_factor, set_lr
from .precision import autocast
from .rewards import RewardTerm, score

RolloutFn = Callable[..., list]  # (policy, samples, state) -> trajectories, G per sample, contiguous


@dataclass
class RGRPOState(TrainState):
    """The loop's state plus what R-GRPO keeps between steps."""

    config: RGRPOConfig
    terms: list[RewardTerm] = field(default_factory=list)  # the reward terms scored every step
    ref: torch.nn.Module | None = None  # frozen reference scorer (beta > 0 only)
    last: list[Trajectory] = field(default_factory=list)  # the last step's trajectories (for notebooks)


# -- the math --------------------------------------------------------------------------------------
def group_advantages(rewards, group_size: int, eps: float = 1e-4, scale: bool = True):
    """(r - group mean) / (group std + eps) over contiguous groups; returns (advantages, zero_std per group).

    Groups whose rewards are all equal get exactly 0 (no signal) and are flagged. The std is
    torch's unbiased one, as in the released trainer.
    """
    r = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (got {group_size}): a group of one rollout has no relative signal")
    if r.numel() % group_size:
        raise ValueError(
            f"{r.numel()} rewards cannot be split into groups of group_size={group_size}; "
            "each prompt's rollouts must be contiguous and complete"
        )
    g = r.view(-1, group_size)
    mean, std = g.mean(1, keepdim=True), g.std(1, keepdim=True)
    zero = (g.max(1).values - g.min(1).values) == 0
    adv = g - mean
    if scale:
        adv = adv / (std + eps)
    adv[zero] = 0.0
    return adv.reshape(-1), zero


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    agg: str = "token",
    denom: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """Clipped-ratio policy-gradient loss over the tokens where `mask` is True.

    logp, old_logp, ref_logp, mask: (B, L); advantages: (B,). Per token:
    `-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta * k3`, with r = exp(logp - old_logp)
    and k3 = exp(ref - logp) - (ref - logp) - 1. `agg="token"` sums over tokens, "sequence"
    sums per-row means; either sum is divided by `denom` (default: the number of tokens / rows here).
    Returns the loss and sums for logging (`clipped`, `kl`, `tokens`, `ratio`).
    """
    m = mask.to(logp.dtype)
    old = torch.where(mask, old_logp, logp.detach())  # masked slots may hold NaN: keep them out of the graph
    ratio = torch.exp(logp - old)
    a = advantages.to(logp.dtype).unsqueeze(1)
    unclipped, clipped = ratio * a, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a
    per_tok = -torch.minimum(unclipped, clipped)
    kl = torch.zeros_like(per_tok)
    if beta > 0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp from the frozen reference policy")
        d = torch.where(mask, ref_logp, logp.detach()) - logp
        kl = torch.exp(d) - d - 1
        per_tok = per_tok + beta * kl
    per_tok = per_tok * m
    if agg == "token":
        total, n = per_tok.sum(), m.sum()
    elif agg == "sequence":
        total, n = (per_tok.sum(1) / m.sum(1).clamp(min=1)).sum(), torch.tensor(float(mask.shape[0]))
    else:
        raise ValueError(f"agg must be 'token' or 'sequence', got {short(agg)}")
    loss = total / (denom if denom is not None else n.clamp(min=1))
    with torch.no_grad():
        hit = ((ratio < 1 - eps_low) & (a < 0)) | ((ratio > 1 + eps_high) & (a > 0))
        stats = {
            "clipped": float((hit & mask).sum()),
            "kl": float((kl * m).sum()),
            "tokens": float(m.sum()),
            "ratio": float((ratio * m).sum()),
        }
    return loss, stats


# -- one step ----------------------------------------------------------------------------------------
def rollout_config(cfg: RGRPOConfig, step: int):
    """The rollout settings of `step` on this process (the sampling seed is a pure function of step and rank).

    Every setting is passed by name, so one RolloutConfig does not know is a TypeError, never dropped.
    """
    d = dist.info()
    return RolloutConfig.of(
        cfg.rollout,
        group_size=cfg.group_size,
        mode=cfg.rollout_mode,
        seed=(cfg.seed * 1_000_003 + step) * max(1, d.world_size) + d.rank,
    )


def _default_rollout(policy, samples, state) -> list:
    return rollout(policy, samples, rollout_config(state.config, state.step), progress=False)


def scripted_rollout(make_script: Callable) -> RolloutFn:
    """A rollout function that forces each row's text through the real engine (deterministic groups).

    `make_script(sample, j, step)` returns the text of row j of the sample's group (a str or a list
    of str pieces, see `r3lab.engine.rollouts.rollout`); end it with `<|im_end|>` so nothing is sampled
    after it. Crop calls act and log-probs are recorded exactly as in a sampled rollout.
    """

    def fn(policy, samples, state):
        G = state.config.group_size
        scripts = [make_script(s, j, state.step) for s in samples for j in range(G)]
        return rollout(policy, samples, rollout_config(state.config, state.step), scripts=scripts, progress=False)

    return fn


def update(state: RGRPOState, trajs: Sequence, advantages: torch.Tensor) -> dict:
    """`inner_epochs` optimizer updates of the clipped loss on these trajectories (this process's share)."""
    cfg, policy = state.config, state.policy
    world = dist.info().world_size
    T = cfg.score_temperature
    rows = signal_rows(advantages, cfg.beta, [len(t.input_ids()) for t in trajs])
    chunks = by_length([len(trajs[i].input_ids()) for i in rows], rows=cfg.micro_rows)  # less padding, the same sum
    chunks = [[rows[i] for i in c] for c in chunks]
    batches = [collate([trajs[i] for i in c], policy) for c in chunks]
    n_tok = dist.all_sum(sum(float(t.loss_mask().sum()) for t in trajs))  # every row's tokens, skipped ones too
    denom = (n_tok if cfg.loss_agg == "token" else dist.all_sum(len(trajs))) / world  # DDP averages over ranks
    with torch.no_grad(), autocast(policy.device, enabled=cfg.autocast):  # what the loss compares against: fixed
        for b in batches:  # before the first update
            b["sampled_logprobs"] = b["old_logprobs"]  # as recorded at sampling (the mismatch is measured on them)
            need = b["loss_mask"] & torch.isnan(b["old_logprobs"])
            if cfg.recompute_old_logprobs or bool(need.any()):
                fresh = token_logprobs(state.scorer, b, T)
                b["old_logprobs"] = fresh if cfg.recompute_old_logprobs else torch.where(need, fresh, b["old_logprobs"])
            if state.ref is not None:
                b["ref_logprobs"] = token_logprobs(state.ref, b, T)
    adv = advantages.to(policy.device)
    sums = {"clipped": 0.0, "kl": 0.0, "tokens": 0.0, "ratio": 0.0, "loss": 0.0}
    norms, mismatch = [], []
    for epoch in range(cfg.inner_epochs):
        with defer_interrupt():
            for k, (c, b) in enumerate(zip(chunks, batches)):
                last = k == len(chunks) - 1
                sync = (
                    contextlib.nullcontext() if last or not hasattr(state.scorer, "no_sync") else state.scorer.no_sync()
                )
                with sync, autocast(policy.device, enabled=cfg.autocast):
                    logp = token_logprobs(state.scorer, b, T)
                    if epoch == 0:  # the training forward before any update, against the rollout's own numbers
                        mismatch.append(
                            mismatch_sums(logp, b["sampled_logprobs"], b["loss_mask"], cfg.eps_low, cfg.eps_high)
                        )
                    loss, st = policy_loss(
                        logp,
                        b["old_logprobs"],
                        adv[c],
                        b["loss_mask"],
                        eps_low=cfg.eps_low,
                        eps_high=cfg.eps_high,
                        beta=cfg.beta,
                        ref_logp=b.get("ref_logprobs"),
                        agg=cfg.loss_agg,
                        denom=denom,
                    )
                    loss.backward()
                for key in st:
                    sums[key] += st[key]
                sums["loss"] += float(loss.detach()) / world
            norms.append(clip_and_step(state.optimizer, cfg.grad_clip))
    tok = max(1.0, dist.all_sum(sums["tokens"]))
    return {
        "loss": dist.all_sum(sums["loss"]) / cfg.inner_epochs,
        "clip_frac": dist.all_sum(sums["clipped"]) / tok,
        "kl": dist.all_sum(sums["kl"]) / tok if state.ref is not None else None,  # None: no reference model
        "ratio_mean": dist.all_sum(sums["ratio"]) / tok,
        **{k: sum(n[k] for n in norms) / len(norms) for k in norms[0]},  # grad norms, mean over updates
        "batch_tokens": dist.all_sum(sum(len(t.input_ids()) for t in trajs)),
        **mismatch_metrics(mismatch, dist.all_sum, _all_max),
    }


def _all_max(x: float) -> float:
    return max(v for v in dist.all_gather_floats([x]) if v is not None)


def signal_rows(advantages: torch.Tensor, beta: float, lengths: Sequence[int]) -> list[int]:
    """The rows whose loss has a gradient: without a KL term (beta = 0) a row of advantage exactly 0 (a group whose
    rewards were all equal) contributes 0 to the loss and its gradient, so the update skips its forward and
    backward; its tokens still count in the loss's denominator, so the step is the same. At least one row (the
    shortest) always runs, so every parameter gets its (zero) gradient and AdamW steps as it would have."""
    adv = advantages.reshape(-1).tolist()
    if beta > 0:
        return list(range(len(adv)))
    keep = [i for i, a in enumerate(adv) if a != 0.0]
    return keep or [min(range(len(adv)), key=lambda i: lengths[i])]


def step_metrics(trajs: Sequence, scores, zero_std: torch.Tensor, group_size: int) -> dict:
    """Reward terms, spread, crop behaviour and length of this process's trajectories (global after all_sum)."""
    m = rollout_metrics(rollout_values(trajs, scores), total=dist.all_sum)
    groups = dist.all_sum(len(trajs)) / group_size
    tot = torch.tensor(scores.total).view(-1, group_size)
    out = {
        "reward": m["reward"],
        "reward_std": dist.all_sum(float(tot.std(1).sum())) / groups,
        "frac_zero_std": dist.all_sum(float(zero_std.float().sum())) / groups,
    }
    for name, vals in scores.terms.items():
        got = [v for v in vals if v is not None]
        cnt = dist.all_sum(len(got))
        out[f"reward/{name}"] = dist.all_sum(sum(got)) / cnt if cnt else float("nan")
    if "accuracy" in m:
        out.update(accuracy=m["accuracy"], accuracy_crop=m["accuracy_crop"], accuracy_no_crop=m["accuracy_no_crop"])
    out.update(
        crop_rate=m["crop_rate"],
        crops_per_rollout=m["crops"],
        invalid_crop_rate=m["invalid_crop_rate"],
        crop_iou=m["crop_iou"],
        completion_tokens=m["tokens"],
        frac_answered=m["answered"],
    )
    return out


def train_step(state: RGRPOState, samples: Sequence, rollout_fn: RolloutFn | None = None) -> dict:
    """Roll out this step's prompts (this process's share), score, advantages, `inner_epochs` updates; step += 1."""
    cfg, policy = state.config, state.policy
    t0 = time.perf_counter()
    idx = dist.shard(batch_order(len(samples), state.step, cfg.prompts_per_step, cfg.seed), unit="prompts")
    local = [samples[i] for i in idx]
    trajs = (rollout_fn or _default_rollout)(policy, local, state)
    if len(trajs) != len(local) * cfg.group_size:
        raise RuntimeError(f"rollout returned {len(trajs)} trajectories for {len(local)} prompts x G={cfg.group_size}")
    t1 = time.perf_counter()
    scores = score(trajs, state.terms)
    adv, zero = group_advantages(scores.total, cfg.group_size, cfg.adv_eps, cfg.scale_rewards)
    for i, (t, a) in enumerate(zip(trajs, adv.tolist())):
        t.meta.update(advantage=a, zero_std_group=bool(zero[i // cfg.group_size]))
    policy.model.train()
    set_lr(state.optimizer, lr_factor(state.step, cfg.steps, cfg.warmup, cfg.schedule, cfg.min_lr_ratio))
    with defer_interrupt():  # the updates, the step count and the step's row change together
        row = update(state, trajs, adv)
        state.step += 1
        t2 = time.perf_counter()
        state.last = trajs
        gen = dist.all_sum(sum(len(p.ids) for t in trajs for p in t.pieces if p.kind == "model_text"))
        dt = max(dist.all_sum(t2 - t0) / dist.info().world_size, 1e-9)
        row.update(step_metrics(trajs, scores, zero, cfg.group_size))
        row.update(
            {
                "lr": state.optimizer.param_groups[0]["lr"],
                "tokens_per_s": row["batch_tokens"] / dt,
                "gen_tokens_per_s": gen / max(t1 - t0, 1e-9),
                "traj_per_s": cfg.batch_size / dt,
                "time_rollout": t1 - t0,
                "time_update": t2 - t1,
                "time": dt,
                "wall": time.perf_counter() - state.started,
            }
        )
        state.row = row
    return row


# -- set-up and loop -------------------------------------------------------------------------------
def make_reference(state: RGRPOState) -> TokenScorer:
    """The frozen reference scorer (only ever called when beta > 0)."""
    cfg, policy = state.config, state.policy
    saved = f"{cfg.out_dir}/reference" if cfg.out_dir else ""
    if not cfg.ref_policy and is_adapted(policy.model):  # LoRA: the frozen base under the adapters is the start
        return TokenScorer(policy.model, adapters=False)
    if cfg.ref_policy:
        ref = load_policy(cfg.ref_policy, dtype=policy.model.dtype, device=policy.device).model
    elif saved and state.resumed and os.path.isfile(f"{saved}/config.json"):  # a fresh run replaces a stale one
        ref = load_policy(saved, dtype=policy.model.dtype, device=policy.device).model
    else:
        ref = copy.deepcopy(policy.model)
        if saved and dist.info().is_main:  # resuming later must compare against the same start
            Policy(ref, policy.tokenizer, policy.image_processor, policy.view, policy.prompt, policy.meta).save(saved)
    ref.eval().requires_grad_(False)
    return TokenScorer(ref)


def setup(
    policy: Policy,
    config: RGRPOConfig | None = None,
    terms: Sequence[RewardTerm] | None = None,
    n_samples: int | None = None,
) -> RGRPOState:
    """The state of an R-GRPO run (optimizer, DDP, reference only when beta > 0, resumed if asked);
    `n_samples`, when given, is checked against the prompts each step needs."""
    cfg = (config or RGRPOConfig()).validate()
    torch.manual_seed(cfg.seed)
    state = prepare(policy, cfg, RGRPOState)
    if cfg.prompts_per_step % dist.info().world_size:
        raise ValueError(
            f"{cfg.prompts_per_step} prompts per step (batch_size / group_size) cannot be split over "
            f"{dist.info().world_size} processes without splitting a group: make it a multiple"
        )
    if n_samples is not None:
        check_batch(cfg.prompts_per_step, n_samples, cfg.batch_size, "prompts (batch_size / group_size)")
    maybe_resume(state)
    state.terms = list(terms) if terms is not None else cfg.reward.terms()
    state.ref = make_reference(state) if cfg.beta > 0 else None
    state.started = time.perf_counter()
    return state


def train(
    policy: Policy,
    samples: Sequence,
    config: RGRPOConfig | None = None,
    callbacks: Sequence[Callable] = (),
    rollout_fn: RolloutFn | None = None,
    terms: Sequence[RewardTerm] | None = None,
    state: RGRPOState | None = None,
) -> MetricLog:
    """R-GRPO on `samples` (policy updated in place); returns the log, also after Ctrl-C (which saves)."""
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to train on")
    state = state or setup(policy, config, terms, n_samples=len(samples))
    try:
        return run_loop(
            state, lambda s: train_step(s, samples, rollout_fn), state.config.steps, callbacks, desc="R-GRPO"
        )
    finally:
        policy.model.eval()
