"""gpu_check's rows for the fast decode path (`RolloutSettings.cache="static"`, `cuda_graphs`): the two paths side by
side in one run, at each shape.

  eager     the growing cache, every decode step launched op by op (`cache="dynamic"`)
  graphed   the static cache, each decode step replayed as one CUDA graph (`cache="static"`, `cuda_graphs=True`: a
            capture that fails raises, with its trace, into the row); `--smoke` on a CPU stands capture in
            (`r3lab.testing.standin_graphs`: the step function kept and called again), so the same rows run

  decode_steps   ms per decode step at batch 1 / 8 / 64 (the engine's own step: inputs in, step, logits out;
                 `timing`, synchronised), and end to end (a second, untimed run: every part of a step, its host work
                 included, per step and per token), both paths; target on the 3B shape: graphed <= 10 ms at 8, 64.
                 A graphed row is ok only when its graphs replayed (`replays` > 0, `graphs` "on", the pool not broken)
  rgrpo_paths    one R-GRPO step (a group of 8, 2 crops each, scripted) with each path after a warm-up step:
                 rollout and update seconds, and the rollout-trainer mismatch in the policy's dtype
  eval_tiny      the shipped r3-tiny (assets/checkpoints/r3-tiny-rgrpo) on 150 held-out questions (the recipe's
                 evaluation set), greedy, both paths set through `EvalConfig.rollout`: seconds and the same answers
The exactness of the graphed path and the group of 8 with 2 crops end to end are gpu_check's `exactness_*` and
`rollouts_*` rows, which run both paths.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from r3lab.engine.config import RolloutConfig, RolloutSettings
from r3lab.engine.environment import crop_script
from r3lab.engine.rollouts import rollout

ROOT = Path(__file__).resolve().parents[1]
PATHS = {"eager": dict(cache="dynamic", cuda_graphs=False), "graphed": dict(cache="static", cuda_graphs=True)}


def graphs_ok(stats: dict) -> bool:
    """A graphed run counts only when its steps were replayed graphs: replays, graphs on, the pool not broken."""
    return stats.get("replays", 0) > 0 and stats.get("graphs") == "on" and not stats.get("pool", {}).get("broken")


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _memory(device) -> dict:
    if device.type != "cuda":
        return {}
    return {
        "allocated_gib": round(torch.cuda.memory_allocated() / 2**30, 3),
        "reserved_gib": round(torch.cuda.memory_reserved() / 2**30, 3),
    }


def decode_steps(policy, sample, batches=(1, 8, 64), tokens: int = 32) -> dict:
    """Per path and batch: ms per decode step (the step alone) and end to end per step and per token, the parts of a
    step, the work counters, the pool; a warm-up rollout first (kernels, buffers, the captured steps)."""
    out, dev = {}, policy.device
    script = [" a" * (tokens + 8)]  # forced: every row writes the same `tokens` tokens, no crop
    for path, kw in PATHS.items():
        for b in batches:
            cfg = RolloutConfig(greedy=True, max_crops=0, max_new_tokens=tokens, max_segment_tokens=tokens, **kw)
            warm = {}
            rollout(policy, [sample], cfg, group_size=b, scripts=script, progress=False, stats=warm)
            stats = {}
            rollout(
                policy, [sample], replace(cfg, timing=True), group_size=b, scripts=script, progress=False, stats=stats
            )
            t, steps = stats["timing"], max(1, stats["timing"]["counts"].get("decode", 0))
            plain = {}
            trajs = rollout(policy, [sample], cfg, group_size=b, scripts=script, progress=False, stats=plain)
            row, loop = f"{path}_b{b}", plain["steps"]
            out[f"{row}_ms"] = round(1e3 * t["decode_s"] / steps, 3)
            # end to end, an untimed run: from one step's copy back to the next, every part of a step, per step and
            # per token (the step writes a token in each of its b rows)
            out[f"{row}_step_ms"] = round(1e3 * loop["seconds"] / max(1, loop["steps"]), 3)
            out[f"{row}_token_ms"] = round(out[f"{row}_step_ms"] / b, 4)
            out[f"{row}_parts_ms"] = {
                k[:-2]: round(1e3 * t[k] / steps, 3)
                for k in ("sampling_s", "environment_s", "cache_upkeep_s", "host_s", "capture_s")
            }
            for k in ("replays", "captures", "regrows", "pools", "graphs", "transfers"):
                out[f"{row}_{k}"] = plain[k]
            out[f"{row}_warmup_captures"] = warm["captures"]
            if "pool" in plain:  # the static buffers against the live length, and the window attention read
                out[f"{row}_pool"] = dict(
                    plain["pool"],
                    live=len(trajs[0].input_ids()),
                    mean_window=round(plain["window_slots"] / max(1, plain["decodes"]), 1),
                )
            out[f"{row}_memory"] = _memory(dev)
    for b in batches:
        out[f"eager_over_graphed_b{b}"] = round(out[f"eager_b{b}_ms"] / max(out[f"graphed_b{b}_ms"], 1e-9), 2)
        out[f"eager_over_graphed_step_b{b}"] = round(
            out[f"eager_b{b}_step_ms"] / max(out[f"graphed_b{b}_step_ms"], 1e-9), 2
        )
    bad = [b for b in batches if not (out[f"graphed_b{b}_replays"] > 0 and out[f"graphed_b{b}_graphs"] == "on")]
    out["ok"] = not bad
    if bad:
        out["why"] = f"graphed rows at batch {bad} did not replay graphs: " + "; ".join(
            str(out[f"graphed_b{b}_graphs"]) for b in bad
        )
    return out


def rgrpo_paths(policy, samples) -> dict:
    """One R-GRPO step (G = 8, two crops each, scripted) per path, after one warm-up step per path."""
    from r3lab.train.config import RGRPOConfig
    from r3lab.train.rgrpo import rollout_config, setup, train_step

    frame = samples[0].prompt(policy.view, policy.prompt).frame
    script = crop_script(frame, 2, style=policy.prompt.calls)
    cfg = RGRPOConfig(
        steps=4,
        group_size=8,
        batch_size=8,
        micro_rows=2,
        lr_lm=1e-6,
        lr_vision=1e-6,
        lr_merger=1e-6,
        rollout=RolloutSettings(max_new_tokens=200, max_segment_tokens=120),
    )
    trainable = {n: p.requires_grad for n, p in policy.model.named_parameters()}  # setup freezes some
    state = setup(policy, cfg)
    out = {}
    try:
        for path, kw in PATHS.items():

            def fn(pol, smp, st, kw=kw):
                return rollout(
                    pol, smp, replace(rollout_config(st.config, st.step), **kw), scripts=[script] * 8, progress=False
                )

            train_step(state, samples[:1], fn)  # warm-up
            row = train_step(state, samples[:1], fn)
            out[path] = {
                k: row[k]
                for k in (
                    "time",
                    "time_rollout",
                    "time_update",
                    "loss",
                    "mismatch/abs_mean",
                    "mismatch/abs_max",
                    "mismatch/kl",
                    "mismatch/clip_share",
                )
            }
    finally:  # the later checks get the model as it was (its weights moved a little)
        del state
        for n, p in policy.model.named_parameters():
            p.requires_grad_(trainable[n])
            p.grad = None
        policy.model.eval()
    out["rollout_eager_over_graphed"] = round(out["eager"]["time_rollout"] / out["graphed"]["time_rollout"], 2)
    out["step_eager_over_graphed"] = round(out["eager"]["time"] / out["graphed"]["time"], 2)
    out["dtype"] = str(next(policy.model.parameters()).dtype).replace("torch.", "")
    out["ok"] = all(torch.isfinite(torch.tensor(out[p]["loss"])) for p in PATHS)
    return out


def eval_tiny(device, n: int) -> dict:
    """The shipped r3-tiny on `n` of the recipe's held-out questions, both paths, after a warm-up each."""
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import EvalConfig, evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe_config import RecipeConfig

    rc = RecipeConfig()
    policy = load_policy(ROOT / "assets" / "checkpoints" / "r3-tiny-rgrpo", view=rc.view_config(), device=device)
    samples = build_samples(n, rc.eval_seed, rc.family_list, rc.world_config(), view=policy.view, progress=False)
    out, answers = {"n": n}, {}
    for path, kw in PATHS.items():
        cfg = EvalConfig(rollout=replace(EvalConfig().rollout, **kw))  # the engine settings any config nests
        out[f"{path}_cache"] = RolloutConfig.of(cfg.rollout).cache  # what `evaluate` runs with
        evaluate(policy, samples[:8], cfg, progress=False)  # warm-up
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        res = evaluate(policy, samples, cfg, progress=False)
        _sync(device)
        out[f"{path}_s"] = round(time.perf_counter() - t0, 3)
        out[f"{path}_cpu_s"] = round(time.process_time() - c0, 3)  # this process's CPU seconds (a shared machine)

        out[f"{path}_accuracy"] = res.accuracy
        answers[path] = [t.final_answer() for t in res.trajectories]
    out["eager_over_graphed"] = round(out["eager_s"] / out["graphed_s"], 2)
    out["same_answers"] = answers["eager"] == answers["graphed"]
    out["ok"] = out["same_answers"] and (out["eager_cache"], out["graphed_cache"]) == ("dynamic", "static")
    return out
