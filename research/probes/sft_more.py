"""Added SFT phases: does a recipe's SFT, short of its targets, reach them with more steps, and how much read_one
room does it keep for R-GRPO?

    python sft_more.py SFT_FOLDER OUT_DIR STEPS N [key=json ...]   # RecipeConfig overrides, e.g. seed=1 data_seed=21

Continues SFT_FOLDER with STEPS more steps of the recipe's SFT (its mix, batch and learning rate, a fresh warm-up and
cosine, the data order of seed + 100), saves OUT_DIR/model and evaluates it greedily on N held-out questions per
family (the recipe's eval seed), writing OUT_DIR/result.json.
"""

import json
import sys
import time

import torch

torch.set_num_threads(1)


def main(sft: str, out: str, steps: int, n: int, overrides: dict) -> dict:
    from dataclasses import replace

    from r3lab.core.env import seed_everything
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig
    from r3lab.train import train_sft

    c = RecipeConfig.from_settings(**overrides)
    pol = load_policy(sft, view=c.view_config())
    seed_everything(c.seed)
    t = time.time()
    train = build_samples(
        c.n_train,
        c.data_seed,
        c.family_list,
        c.world_config(),
        view=pol.view,
        progress=False,
        weights=c.phase("sft_read").mix.family_weights(c.family_list) or None,
    )
    cfg = replace(c.sft_config("sft", steps, c.sft.batch, c.phase("sft").lr), out_dir=out + "/logs", seed=c.seed + 100)
    train_sft(pol, train, cfg)
    pol.save(out + "/model")
    held = build_samples(
        n * len(c.family_list), c.eval_seed, c.family_list, c.world_config(), view=pol.view, progress=False
    )
    res = evaluate(pol, held, c.eval_config("sft"), progress=False)
    keys = ("accuracy", "accuracy_lo", "accuracy_hi", "crop_iou", "crop_iou_lo", "crop_iou_hi", "contains_detail")
    return {
        "sft": sft,
        "steps": steps,
        "overrides": overrides,
        "train_s": round(time.time() - t),
        "n": n,
        "rows": {f: {k: round(v, 3) for k, v in r.items() if k in keys} for f, r in res.rows.items()},
    }


if __name__ == "__main__":
    folder, out, steps, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    result = main(folder, out, steps, n, {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[5:])})
    print(json.dumps(result, indent=1))
    with open(out + "/result.json", "w") as f:
        json.dump(result, f, indent=1)
