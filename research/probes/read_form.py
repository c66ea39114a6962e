"""Does the reads' written form, learned in the read phase, survive the verdict drill? (research notes)

    python read_form.py START OUT.json [--read-steps 200] [--drill 1000] [--seed 1] [--n 100]

START is a base after the recipe's read phase (a recipe folder's `logs/base_read/step_000200`): it reads the
detail in the read phase's form (the class alone, `read_check`), and at chance in the form the comparison phase and
the SFT write (" The pattern is X.</think><answer>X</answer>", FINDINGS: comparison). This runs a read phase of
`--read-steps` with its close-ups written as rationales (the recipe's read-phase mix otherwise), then the recipe's
verdict drill (`--drill` steps, text only), measuring after each: the read in both forms (teacher-forced, `--n`
held-out close-ups, chance 20), the text verdict (`drill_check`, 200) and the grounding (box centres on the named
landmark, 200). Phase k's samples come from data seed 3000 * seed + k. One process, one thread; OUT.json as it goes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--read-steps", type=int, default=200)
    ap.add_argument("--drill", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=100, help="held-out close-ups of each read measurement")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from compare_jump import rationale_read

    from r3lab.core.env import seed_everything
    from r3lab.data.grounding import build_base, build_drill
    from r3lab.model.policy import load_policy
    from r3lab.recipe import drill_check, ground_check, read_check
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.sft import train as train_sft

    c = RecipeConfig(out=f"/tmp/read_form/{Path(a.out).stem}")  # logs: not in OUT
    policy = load_policy(a.start, view=c.view_config())
    seed_everything(a.seed)
    rec, t0 = (
        {"start": a.start, "read_steps": a.read_steps, "drill": a.drill, "seed": a.seed, "checks": []},
        time.time(),
    )

    def check(phase: str) -> None:
        policy.model.eval()
        world = c.world_config()
        row = {
            "after": phase,
            "read_answer_form": read_check.read_accuracy(policy, world, a.n)["read_accuracy"],
            "read_rationale_form": rationale_read(policy, world, a.n),
            "text_verdict": drill_check.text_verdict(policy, world, 200)["text_verdict"],
            "centre_on_named": ground_check.measure(policy, {**c.world, **c.base_world}, 200)["centre_on_named"],
            "seconds": round(time.time() - t0),
        }
        policy.model.train()
        rec["checks"].append(row)
        Path(a.out).write_text(json.dumps(rec, indent=1))
        print(row, flush=True)

    check("start")
    if a.read_steps:
        data = build_base(
            a.read_steps * c.base.batch,
            3000 * a.seed,
            c.phase("read").mix.closeups,
            c.world_config(),
            view=policy.view,
            progress=False,
            closeup_style="rationale",
            controls=c.phase("read").mix.controls,
        )
        cfg = replace(
            c.sft_config("probe", a.read_steps, c.base.batch, c.phase("ground").lr, phase="read"),
            seed=a.seed,
            save_every=0,
            resume=False,
        )
        train_sft(policy, data, cfg)
        check(f"{a.read_steps} read steps, close-ups as rationales")
    if a.drill:
        data = build_drill(
            a.drill * c.base.batch,
            3000 * a.seed + 1,
            c.world_config(),
            policy.view,
            progress=False,
            reads=c.phase("drill").mix.reads,
        )
        cfg = replace(
            c.phase_config("probe", replace(c.phase("drill"), steps=a.drill)),
            seed=a.seed + 1,
            save_every=0,
            resume=False,
        )
        train_sft(policy, data, cfg)
        check(f"{a.drill} drill steps")


if __name__ == "__main__":
    main()
