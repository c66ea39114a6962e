"""When does reading the grating jump, and what moves it? (research notes: the read phase's late jump)

    python read_jump.py START OUT [--device cuda] [--variants recipe constant ...] [--seeds 1 2] [--steps 1200]

START is a base after the recipe's first read phase (colour-mark close-ups), e.g. a recipe folder's
`logs/base_read_first`. Each variant x seed runs read phases from it in its own process (one thread) and measures
the recipe's read check (`read_check.read_accuracy`, 200 held-out close-ups, bar 60 %) after each phase, going on
to `--steps` whatever it reads (`--ground`: the grounding check too), and writes OUT/<variant>_s<seed>.json as it goes:

  recipe     the recipe's phases: 400 steps with a fresh warm-up and cosine, then 200-step phases likewise
  constant   the same phases at a constant rate after the warm-up (no decay)
  closeups1  the recipe's phases with every non-control sample a close-up (the recipe: 75 %)
  closeups09 the same with 90 % close-ups
  lr2e-3     the recipe's phases at twice the base learning rate
  focus      the first phase close-ups only (as the recipe's read_focus phase), later phases the recipe's mix

Phase k's samples come from data seed 1000 * seed + k (the recipe's own seeds are data_seed + 1 and + 40 + k).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

VARIANTS = {
    "recipe": {},
    "constant": {"schedule": "constant"},
    "closeups1": {"closeups": 1.0},
    "closeups09": {"closeups": 0.9},
    "lr2e-3": {"lr": 2e-3},
    "focus": {"first_closeups": 1.0},
}


def run(
    start: str, out: str, variant: str, seed: int, steps: int, device: str, first: int, more: int, ground: bool
) -> None:
    import torch

    torch.set_num_threads(1)
    from r3lab.core.env import seed_everything
    from r3lab.data.grounding import build_base
    from r3lab.model.policy import load_policy
    from r3lab.recipe import ground_check
    from r3lab.recipe.read_check import read_accuracy
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.sft import train as train_sft

    logs = f"/tmp/read_jump/{Path(out).name}/{variant}_s{seed}"  # its training logs: not in OUT
    c = RecipeConfig.from_settings(out=logs, **{"read.steps": first, "read.check.more": more})
    v = VARIANTS[variant]
    policy = load_policy(start, view=c.view_config(), device=device)
    seed_everything(seed)
    path = Path(out) / f"{variant}_s{seed}.json"
    rec = {"start": start, "variant": variant, "overrides": v, "seed": seed, "device": device, "checks": []}
    done, k, t0 = 0, 0, time.time()

    def where():
        return ground_check.measure(policy, {**c.world, **c.base_world}, c.phase("ground").check.n)["centre_on_named"]

    if ground:  # grounding questions are a quarter of the recipe's read phase: does reading without them cost any?
        rec["start_centre_on_named"] = where()
    while done < steps:
        n = c.phase("read").steps if k == 0 else c.phase("read").check.more
        closeups = (
            v["first_closeups"] if k == 0 and "first_closeups" in v else v.get("closeups", c.phase("read").mix.closeups)
        )
        data = build_base(
            n * c.base.batch,
            1000 * seed + k,
            closeups,
            c.world_config(),
            view=policy.view,
            progress=False,
            controls=c.phase("read").mix.controls,
        )
        cfg = replace(
            c.sft_config("probe", n, c.base.batch, v.get("lr", c.phase("ground").lr), phase=f"read{k}"),
            schedule=v.get("schedule", "cosine"),
            seed=seed + k,
            save_every=0,
            resume=False,
        )
        train_sft(policy, data, cfg)
        done, k = done + n, k + 1
        m = read_accuracy(policy, c.world_config(), c.phase("read").check.n)
        rec["checks"].append({"steps": done, "read_accuracy": m["read_accuracy"], "seconds": round(time.time() - t0)})
        if ground:
            rec["checks"][-1]["centre_on_named"] = where()
        path.write_text(json.dumps(rec, indent=1))
        print(f"{variant} s{seed}: {done} steps, read {m['read_accuracy']} % ({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--first", type=int, default=400, help="the first phase's steps (the recipe's read_steps)")
    ap.add_argument("--ground", action="store_true", help="the grounding check too, at the start and each check")
    ap.add_argument("--more", type=int, default=200, help="each later phase's steps (the recipe's read_more)")
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=run, args=(a.start, a.out, v, s, a.steps, a.device, a.first, a.more, a.ground))
        for v in a.variants
        for s in a.seeds
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
