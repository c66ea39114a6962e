"""Supervised fine-tuning on VLIR reference rationales: one step, and `train`.

Labels come from the Trajectory: only `model_text` tokens are supervised (the official SFT code
masks by matching image-token ids instead; here provenance decides). Log-probs are computed only
where a label exists (`r3lab.engine.scoring`). The loop, the optimiser and the checkpoints are
shared with R-GRPO (`r3lab.train.loop`, `r3lab.train.optim`).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Sequence

import torch

from ..core.batch import by_length, collate
from ..data.call_styles import check_styles
from ..data.vlir import view_mismatch
from ..engine.budget import check_budget
from ..engine.scoring import token_logprobs
from ..model.policy import Policy
from . import dist
from .config import SFTConfig
from .loop import TrainState, batch_order, check_batch, defer_interrupt, maybe_resume, prepare, run_loop
from .metrics import MetricLog
from .optim import clip_and_step, lr_factor, set_lr
from .precision import autocast


def sft_step(state: TrainState, samples: Sequence) -> dict:
    """One optimizer step of next-token NLL on model_text tokens of the reference trajectories."""
    cfg, policy = state.config, state.policy
    t0 = time.perf_counter()
    idx = dist.shard(batch_order(len(samples), state.step, cfg.batch_size, cfg.seed), unit="samples")
    trajs = [samples[i].reference(policy.view, policy.prompt) for i in idx]
    for t in trajs:
        t.tokenize(policy)
    n_tok = dist.all_sum(sum(int(t.loss_mask().sum()) for t in trajs))  # global normaliser
    set_lr(
        state.optimizer,
        lr_factor(state.step, cfg.schedule_steps or cfg.steps, cfg.warmup, cfg.schedule, cfg.min_lr_ratio),
    )
    total_nll, seen = 0.0, 0
    with defer_interrupt():  # grad_accum micro-batches, each of rows of similar length (less padding)
        chunks = [[trajs[i] for i in part] for part in by_length([len(t.input_ids()) for t in trajs], cfg.grad_accum)]
        for k, chunk in enumerate(chunks):
            check_budget(policy, chunk, 0, len(chunk), policy.device.type)  # a 20,000-token question, say
            batch = collate(chunk, policy)
            sync = (
                contextlib.nullcontext()
                if k == len(chunks) - 1 or not hasattr(state.scorer, "no_sync")
                else state.scorer.no_sync()
            )
            with sync, autocast(policy.device, enabled=cfg.autocast):
                lp = token_logprobs(state.scorer, batch)
                nll = -(lp * batch["loss_mask"]).sum()
                (nll * dist.info().world_size / n_tok).backward()  # DDP averages over ranks
            total_nll += float(nll.detach())
            seen += sum(len(t.input_ids()) for t in chunk)
        norms = clip_and_step(state.optimizer, cfg.grad_clip)
        state.step += 1
        dt = time.perf_counter() - t0
        loss = dist.all_sum(total_nll) / n_tok
        state.row = {
            "loss": loss,
            "ppl": math.exp(min(loss, 50)),
            "lr": state.optimizer.param_groups[0]["lr"],
            **norms,
            "tokens_per_s": dist.all_sum(seen) / dt,
            "supervised_tokens": n_tok,
            "time": dt,
            "wall": time.perf_counter() - state.started,
        }  # inside: Ctrl-C cannot split step and row
    return state.row


def train(
    policy: Policy, samples: Sequence, config: SFTConfig | None = None, callbacks: Sequence[Callable] = ()
) -> MetricLog:
    """SFT `policy` in place on the samples' reference rationales; returns the log (also on Ctrl-C)."""
    cfg = (config or SFTConfig()).validate()
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to train on")
    if missing := [s.sample_id or str(i) for i, s in enumerate(samples) if s.rationale is None][:5]:
        raise ValueError(
            f"SFT needs reference rationales; samples {missing} have none (build them with r3lab.data.build_samples)"
        )
    check_views(samples, policy.view)
    check_styles(samples, policy.prompt.calls)
    torch.manual_seed(cfg.seed)
    state = prepare(policy, cfg)
    check_batch(cfg.batch_size, len(samples), cfg.batch_size, "samples")
    maybe_resume(state)
    try:
        return run_loop(state, lambda s: sft_step(s, samples), cfg.steps, callbacks, desc="SFT")
    finally:
        policy.model.eval()


def check_views(samples: Sequence, view) -> None:
    """Refuse to teach crop boxes in another frame than the one the policy sees (e.g. official VLM-R3 boxes,
    made for images of up to 1.6 M pixels, on r3-tiny's 112x112 view), naming the samples and the fix."""
    bad = []
    for s in samples:
        if why := view_mismatch(s, view):
            bad.append(f"{s.sample_id or '?'} ({why})")
            if len(bad) == 3:
                break
    if bad:
        raise ValueError(
            f"the crop boxes of samples {'; '.join(bad)} do not fit the policy's view {view}: retarget "
            "them to it first: load_dataset(path, view=policy.view), r3lab.data.retarget(sample, "
            "policy.view), or `r3lab data import --policy <model folder>` for official files"
        )


def supervised_text(traj, policy=None, mark: tuple[str, str] = ("\u27e6", "\u27e7")) -> str:
    """The trajectory as text with every supervised (model_text) span wrapped in marks; images as <image HxW>."""
    out = []
    for p in traj.pieces:
        if p.kind == "image":
            g = p.info.grid_thw
            out.append(f"<image {g[1]}x{g[2]} patches>" if g else "<image>")
        elif p.kind == "model_text":
            out.append(mark[0] + p.text + mark[1])
        else:
            out.append(p.text)
    return "".join(out)
