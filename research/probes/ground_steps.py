"""How many grounding steps the base needs (research notes): the recipe's grounding phase alone, with its own
warm-up and cosine over STEPS, then the recipe's grounding check (no added round: a miss is recorded and raised).

    python research/probes/ground_steps.py OUT SEED DATA_SEED STEPS [SCHEDULE]

SCHEDULE: the phase's learning-rate schedule after its warm-up, "cosine" (the recipe's) or "constant".

Writes OUT/logs/ground_checks.json (the check) and OUT/times.json (the phase's wall seconds).
"""

import sys

import torch

torch.set_num_threads(1)


def main(out: str, seed: int, data_seed: int, steps: int, schedule: str = "cosine") -> None:
    from dataclasses import replace

    from r3lab.recipe.recipe import Recipe
    from r3lab.recipe.recipe_config import RecipeConfig

    class Config(RecipeConfig):
        def sft_config(self, *a, **k):
            return replace(super().sft_config(*a, **k), schedule=schedule)

    cfg = Config.from_settings(
        out=out,
        seed=seed,
        data_seed=data_seed,
        **{
            "ground.steps": steps,
            "ground.check.rounds": 0,
            "pairs.steps": 0,
            "read_first.steps": 0,
            "read_focus.steps": 0,
            "read.steps": 0,
            "read.check.n": 0,
            "drill.steps": 0,
            "drill.check.n": 0,
            "compare.steps": 0,
            "compare.check.n": 0,
        },
    )
    Recipe(cfg, progress=False).train_stage("base")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
