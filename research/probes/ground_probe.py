"""The recipe's grounding phase alone (research notes, session 9): does it bind names to objects?

    python ground_probe.py OUT_DIR [key=json ...]      # RecipeConfig overrides, e.g. ground.mix.closeups=0 seed=1
    python ground_probe.py OUT_DIR ground.mix.pairs=0.25 ground.mix.closeups=0   # a quarter of two-landmark questions
    python ground_probe.py OUT_DIR init='"DIR"' data_seed=21 ground.steps=1500   # go on from a saved policy

Builds r3-tiny and the base samples exactly as `Recipe._base` does for its first phase (`base_world`,
`base_closeups`, `base_pairs`, `base_batch`, `base_lr`, `base_steps`, `seed`, `data_seed`), trains that phase in this
one process (the whole batch on one rank: the same samples and schedule as the recipe's two DDP ranks, not
the same bits), and every `every=` steps (default 500) measures where its greedy boxes land on N
held-out "Where is the ...?" questions of the phase's world (`r3lab.recipe.ground_check.evaluate_where`,
`n=`, default 200). Writes OUT_DIR/result.json (the curve) and OUT_DIR/log.jsonl (the training log).
"""

import json
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)


def main(out: str, overrides: dict) -> dict:
    from r3lab.core.env import seed_everything
    from r3lab.core.prompt import PromptConfig
    from r3lab.data.grounding import build_base
    from r3lab.model.policy import load_policy
    from r3lab.model.tiny import build_tiny
    from r3lab.recipe.ground_check import WhereConfig, evaluate_where
    from r3lab.recipe.recipe import RecipeConfig
    from r3lab.train import train_sft

    Path(out).mkdir(parents=True, exist_ok=True)
    kw = dict(overrides)
    every, n, init = kw.pop("every", 500), kw.pop("n", 200), kw.pop("init", None)
    if "pairs" in kw:  # session 9's spelling, before the recipe had `base_pairs` (its default then: 0.25)
        kw["ground.mix.pairs"] = kw.pop("pairs")
    c = RecipeConfig.from_settings(**kw, out=out)  # recipe settings by path: ground.steps, ground.mix.closeups, ...
    seed_everything(c.seed)
    if init:  # a further phase on a saved policy: fresh warm-up and cosine, fresh samples (`data_seed`)
        policy = load_policy(init)
    else:
        policy = build_tiny(
            c.tiny_config(),
            view=c.view_config(),
            prompt=PromptConfig(question_first=c.question_first, instruction=c.instruction),
        )
    samples = build_base(
        c.phase("ground").mix.samples,
        c.data_seed,
        c.phase("ground").mix.closeups,
        c.world_config(base=True),
        view=policy.view,
        progress=False,
        pairs=c.phase("ground").mix.pairs,
    )
    cfg = c.sft_config("ground", c.phase("ground").steps, c.base.batch, c.phase("ground").lr)
    cfg.out_dir, cfg.save_every, cfg.log_every = out, 0, 10
    probe = WhereConfig(n=n, world={**c.world, **c.base_world})
    curve, t0 = [], time.time()

    def measure(state, row):
        if state.step % every == 0 or state.step == c.phase("ground").steps:
            m = evaluate_where(state.policy, probe)
            curve.append({"step": state.step, "loss": round(row["loss"], 4), "wall_s": round(time.time() - t0), **m})
            print(json.dumps(curve[-1]), flush=True)
            with open(f"{out}/result.json", "w") as f:
                json.dump({"overrides": overrides, "curve": curve}, f, indent=1)

    train_sft(policy, samples, cfg, callbacks=[measure])
    return {"overrides": overrides, "curve": curve}


if __name__ == "__main__":
    main(sys.argv[1], {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])})
