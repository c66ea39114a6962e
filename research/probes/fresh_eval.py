"""A probe's pick checked on questions it was not chosen on (research notes, session 15).

    python fresh_eval.py MODEL_FOLDER OUT.json SEED N     # e.g. SEED 2027 (the table's held-out seed is 999)

Greedy evaluation with the recipe's settings on N fresh read_one and compare_two questions of the recipe's
world; prints accuracy and crop IoU with their bootstrap intervals per family.
"""

import json
import sys

import torch


def main() -> None:
    torch.set_num_threads(1)
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig

    c = RecipeConfig()
    pol = load_policy(sys.argv[1], view=c.view_config())
    seed, n = int(sys.argv[3]), int(sys.argv[4])
    fams = ["read_one", "compare_two"]
    held = build_samples(n * len(fams), seed, fams, c.world_config(), view=pol.view, progress=False)
    res = evaluate(pol, held, c.eval_config("sft"), progress=False)
    out = {"model": sys.argv[1], "seed": seed, "n": n, "rows": res.rows}
    json.dump(out, open(sys.argv[2], "w"), indent=1)
    for f, r in res.rows.items():
        print(
            f,
            {
                k: round(r[k], 4)
                for k in ("accuracy", "accuracy_lo", "accuracy_hi", "crop_iou", "crop_iou_lo", "crop_iou_hi")
            },
        )


if __name__ == "__main__":
    main()
