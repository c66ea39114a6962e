"""The recipe's SFT check (`r3lab.recipe.sft_check.measure`, its held-out seed) on given SFT models.

python sft_check_at.py OUT.json FOLDER [FOLDER ...]
"""

import json
import sys

import torch

torch.set_num_threads(1)

if __name__ == "__main__":
    from r3lab.model.policy import load_policy
    from r3lab.recipe import sft_check
    from r3lab.recipe.recipe import RecipeConfig

    c, out = RecipeConfig(), {}
    for folder in sys.argv[2:]:
        pol = load_policy(folder, view=c.view_config())
        out[folder] = sft_check.measure(pol, c.world_config(), c.eval_config("sft"), c.phase("sft").check.n)
        print(folder, out[folder], flush=True)
    with open(sys.argv[1], "w") as f:
        json.dump({"n": c.phase("sft").check.n, "bar": c.phase("sft").check.bar, "models": out}, f, indent=1)
