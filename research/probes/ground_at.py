"""Where saved checkpoints' greedy boxes land, measured as the recipe's grounding check measures (research notes).

    python ground_at.py N CHECKPOINT [CHECKPOINT ...]    # N held-out "Where is ...?" questions of the base's world

Uses today's `RecipeConfig` defaults for the world (`world` + `base_world`) and the prompt; prints one JSON line
per checkpoint (`r3lab.recipe.ground_check.measure`).
"""

import json
import sys

import torch

torch.set_num_threads(1)


def main(n: int, paths: list[str]) -> None:
    from r3lab.model.policy import load_policy
    from r3lab.recipe.ground_check import measure
    from r3lab.recipe.recipe_config import RecipeConfig

    c = RecipeConfig()
    for path in paths:
        print(path, json.dumps(measure(load_policy(path), {**c.world, **c.base_world}, n)), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
