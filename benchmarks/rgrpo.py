"""R-GRPO step throughput, and the whole step against a reference-loop step, side by side in one run.

    python benchmarks/rgrpo.py [--quick] [--threads 1] [--steps 3] [--device cpu] [--dtype float32]

(a) the r3lab step: one batch of P prompts x G rollouts generated together with KV reuse, the
    rollout's own log-probs as the PPO "old" log-probs, one forward/backward over all rows.
(b) a reference-loop step, as the released trainer does it: rollouts one at a time with a full
    re-prefill after every crop (`rollout_mode="reference"`), per-device batch 1 (`micro_rows=1`),
    and the log-probs recomputed by a full forward per sample (`recompute_old_logprobs=True`).
Both run on the same r3-tiny, samples (the synthetic world: one or two crops, or none) and
scripted rollouts (every row writes its sample's reference rationale; odd rows give a wrong
answer, so groups have a non-zero advantage), so they do identical work apart from the engine.
(c) learning: the slow test's task (prompt forced up to "<answer>", reward = the answer names a
    colour) - mean reward on fixed-seed rollouts before and after a short run, and its wall time.

Prints trajectories/s, tokens/s, the time split and the ratio (b)/(a); writes
benchmarks/results/rgrpo.json. Default threads = 1: on a shared 2-core box, 2 OpenMP threads made
an r3-tiny SFT step 15x slower (2.4 s vs 0.16 s) through barrier spinning.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from r3lab.core.answer import extract_answer
from r3lab.core.trajectory import MODEL
from r3lab.data.vlir import build_samples
from r3lab.data.vocab import COLOURS
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.model.tiny import build_tiny
from r3lab.train.config import RGRPOConfig
from r3lab.train.rewards import RewardTerm, score
from r3lab.train.rgrpo import scripted_rollout, setup, train, train_step

OUT = Path(__file__).resolve().parent / "results" / "rgrpo.json"


def script(sample, j, step):
    """The sample's reference rationale, piece by piece; odd rows answer wrongly."""
    parts = [p.text for p in sample.rationale if p.kind == MODEL]
    if j % 2:
        parts[-1] = parts[-1].replace(f"<answer>{sample.answer}</answer>", "<answer>none</answer>")
    return parts


def time_steps(policy, samples, cfg: RGRPOConfig, steps: int) -> dict:
    state = setup(policy, cfg)
    fn = scripted_rollout(script)
    train_step(state, samples, fn)  # warm-up (allocations, first-call overheads)
    rows = []
    for _ in range(steps):
        rows.append(train_step(state, samples, fn))
    policy.model.eval()
    med = {k: statistics.median(r[k] for r in rows) for k in ("time", "time_rollout", "time_update", "batch_tokens")}
    return {
        "step_s": med["time"],
        "rollout_s": med["time_rollout"],
        "update_s": med["time_update"],
        "traj_per_s": cfg.batch_size / med["time"],
        "tokens_per_s": med["batch_tokens"] / med["time"],
        "batch_tokens": med["batch_tokens"],
        "reward": rows[-1]["reward"],
        "crops_per_rollout": rows[-1]["crops_per_rollout"],
        "steps": [r["time"] for r in rows],
    }


def learning(seed: int = 0) -> dict:
    def names_colour(prompts, completions, **kw):
        return [float(any(c in (extract_answer(x) or "").lower() for c in COLOURS)) for x in completions]

    torch.manual_seed(seed)
    policy = build_tiny()
    samples = build_samples(4, seed=seed, families=["read_one"], view=policy.view, progress=False)
    prefix = "<think>The mark is small.</think><answer>"
    n = len(policy.encode(prefix)) + 3
    terms = [RewardTerm("colour", names_colour)]

    def held_out():
        trajs = rollout(
            policy,
            samples,
            RolloutConfig(group_size=8, max_new_tokens=n, max_segment_tokens=n, seed=99),
            scripts=[prefix] * len(samples),
            progress=False,
        )
        return sum(score(trajs, terms).total) / len(trajs)

    before = held_out()
    cfg = RGRPOConfig(
        steps=12,
        group_size=8,
        batch_size=16,
        micro_rows=16,
        lr_lm=1e-2,
        rollout={"max_new_tokens": n, "max_segment_tokens": n},
        seed=seed + 1,
    )
    t0 = time.perf_counter()
    log = train(policy, samples, cfg, terms=terms, rollout_fn=scripted_rollout(lambda s, j, step: prefix))
    return {
        "reward_before": before,
        "reward_after": held_out(),
        "train_s": time.perf_counter() - t0,
        "steps": cfg.steps,
        "train_rewards": log.series("reward")[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer prompts and steps, no learning run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per setting (median reported)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy = build_tiny()
    policy.model.to(device=args.device, dtype=getattr(torch, args.dtype))
    P, G = (2, 4) if args.quick else (4, 8)
    samples = build_samples(
        P * 4, seed=0, families=["read_one", "compare_two", "count", "control"], view=policy.view, progress=False
    )
    common = dict(group_size=G, batch_size=P * G, lr_lm=1e-5, steps=10**6, temperature=1.0)
    r3 = time_steps(policy, samples, RGRPOConfig(**common, micro_rows=P * G), args.steps)
    ref = time_steps(
        policy,
        samples,
        RGRPOConfig(**common, micro_rows=1, rollout_mode="reference", recompute_old_logprobs=True),
        args.steps,
    )
    res = {
        "machine": {
            "platform": platform.platform(),
            "threads": args.threads,
            "device": args.device,
            "dtype": args.dtype,
            "torch": torch.__version__,
        },
        "setting": {
            "prompts": P,
            "group_size": G,
            "families": "read_one/compare_two/count/control",
            "model_params": sum(p.numel() for p in policy.model.parameters()),
        },
        "r3lab_step": r3,
        "reference_step": ref,
        "step_speedup": ref["step_s"] / r3["step_s"],
        "rollout_speedup": ref["rollout_s"] / r3["rollout_s"],
        "update_speedup": ref["update_s"] / r3["update_s"],
    }
    if not args.quick:
        res["learning"] = learning()
    for name, r in (("r3lab step", r3), ("reference-loop step", ref)):
        print(
            f"{name:>20}: {r['step_s']:.2f} s/step (rollout {r['rollout_s']:.2f}, update {r['update_s']:.2f}), "
            f"{r['traj_per_s']:.1f} traj/s, {r['tokens_per_s']:.0f} tok/s, {r['crops_per_rollout']:.2f} crops/row"
        )
    print(
        f"whole step {res['step_speedup']:.1f}x faster than the reference loop "
        f"(rollout {res['rollout_speedup']:.1f}x, update {res['update_speedup']:.1f}x)"
    )
    if "learning" in res:
        L = res["learning"]
        print(
            f"learning: reward {L['reward_before']:.2f} -> {L['reward_after']:.2f} in {L['train_s']:.0f} s "
            f"({L['steps']} steps)"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
