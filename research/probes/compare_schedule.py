"""The recipe's comparison phase from a saved base, with another learning-rate schedule (research notes).

    python research/probes/compare_schedule.py RUN OUT STEPS [SCHEDULE] [EVERY]

From RUN/logs/base_drill/latest (a recipe run's base after its verdict drill) trains the recipe's comparison phase
as `Recipe._base` builds it (RUN/recipe.json's settings: its data seed + 2, comparisons with both crops in
compare_share of the samples, close-ups written as rationales, base_lr, batch 32), its schedule after the warm-up
SCHEDULE ("cosine", the recipe's, or "constant"), and every EVERY steps (default 150) runs the recipe's verdict
check (`compare_check.verdict_accuracy`, 200 held-out comparisons, bar compare_min). Writes OUT.json.
"""

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

torch.set_num_threads(1)


def main(run: str, out: str, steps: int, schedule: str = "cosine", every: int = 150) -> None:
    from r3lab.model.policy import load_policy
    from r3lab.recipe import compare_check
    from r3lab.recipe.recipe import Recipe
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.recipe.recipe_format import read_settings
    from r3lab.train import train_sft

    saved = json.load(open(f"{run}/recipe.json"))
    c = RecipeConfig.from_settings(**{**read_settings(saved), "out": out + "_run"})
    drill = Path(run) / "logs" / "base_drill"
    policy = load_policy(drill / (drill / "latest").read_text().strip(), view=c.view_config())  # `latest` names it
    data = Recipe(c, progress=False)._read_data(
        steps, c.data_seed + 2, policy.view, c.phase("compare").mix.comparisons, c.phase("compare").mix.style
    )
    cfg = replace(
        c.sft_config("probe", steps, c.base.batch, c.phase("ground").lr, phase="compare"),
        schedule=schedule,
        out_dir="",
        resume=False,
        save_every=0,
    )
    rec = {"run": run, "steps": steps, "schedule": schedule, "bar": c.phase("compare").check.bar, "checks": []}
    t0 = time.time()

    def cb(state, row):
        if state.step % every == 0 or state.step == steps:
            policy.model.eval()
            m = compare_check.verdict_accuracy(policy, c.world_config(), c.phase("compare").check.n)
            policy.model.train()
            rec["checks"].append({"step": state.step, **m, "wall": round(time.time() - t0)})
            print(json.dumps(rec["checks"][-1]), flush=True)
            json.dump(rec, open(out + ".json", "w"), indent=1)

    train_sft(policy, data, cfg, callbacks=[cb])
    rec["seconds"] = round(time.time() - t0)
    json.dump(rec, open(out + ".json", "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5], *map(int, sys.argv[5:6]))
