"""Where a model's compare_two crops land (research notes, session 11), and SFT continued to find out why.

    python compare_crops.py CHECKPOINT N                       # N held-out compare_two questions (seed 999)
    python compare_crops.py sft CHECKPOINT STEPS FAMILIES OUT  # STEPS more SFT steps, then the first form

The first form answers each question greedily (the recipe's evaluation settings) and classes crop k (k = 0, 1)
as on its own detail (the landmark the question names k-th, which the reference rationale crops k-th), on the
other named landmark's, or on neither; it prints the counts, each pattern's accuracy and the share of crops on
either detail. The second continues SFT from CHECKPOINT on the recipe's training samples of FAMILIES (comma-
separated; a fresh warm-up and cosine at the recipe's SFT learning rate, batch 32), saves OUT/final and
measures it as the first form does.
"""

import json
import sys
from collections import Counter

import torch

torch.set_num_threads(1)


def classify(policy, n: int) -> dict:
    from r3lab.data.vlir import build_samples
    from r3lab.data.world import WorldConfig
    from r3lab.evaluation.evaluation import EvalConfig, contains_detail, evaluate
    from r3lab.recipe.recipe_config import RecipeConfig

    c = RecipeConfig()
    samples = build_samples(n, c.eval_seed, ["compare_two"], WorldConfig(**c.world), view=policy.view, progress=False)
    res = evaluate(policy, samples, EvalConfig(rollout=c.eval_rollout), progress=False)
    by = {s.sample_id: s for s in samples}
    counts, right = Counter(), Counter()
    for t in res.trajectories:
        s, kinds = by[t.sample_id], []
        for k, p in enumerate(t.crops[:2]):
            b = p.info.box_orig
            own = b is not None and contains_detail(b, s.details[k])
            other = b is not None and contains_detail(b, s.details[1 - k])
            kinds.append("own" if own else "other" if other else "none")
            counts[f"crop{k}:{kinds[-1]}"] += 1
        pattern = "+".join(kinds) or "no crop"
        counts[pattern] += 1
        right[pattern] += (t.final_answer() or "").strip().lower() in [a.lower() for a in s.answers]
    return {
        "n": len(samples),
        "accuracy": round(res.rows["all"]["accuracy"], 4),
        "contains_detail": round(res.rows["all"]["contains_detail"], 4),
        "counts": dict(counts),
        "accuracy_by_pattern": {k: round(right[k] / counts[k], 3) for k in right},
    }


def more_sft(path: str, steps: int, families: list[str], out: str):
    from r3lab.data.vlir import build_samples
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.config import SFTConfig
    from r3lab.train.sft import train

    c = RecipeConfig()
    policy = load_policy(path)
    data = [
        s
        for s in build_samples(
            c.n_train, c.data_seed, c.family_list, c.world_config(), view=policy.view, progress=False
        )
        if s.family in families
    ]
    cfg = SFTConfig(
        steps=steps,
        batch_size=32,
        lr_lm=c.phase("sft").lr,
        lr_merger=c.phase("sft").lr,
        lr_vision=c.phase("sft").lr,
        autocast=c.autocast,
        warmup=min(50, max(1, steps // 10)),
        seed=c.seed,
        log_every=10,
        save_every=0,
        out_dir=out,
        resume="auto",
    )
    train(policy, data, cfg)
    policy.save(f"{out}/final")
    return policy


if __name__ == "__main__":
    from r3lab.model.policy import load_policy

    if sys.argv[1] == "sft":
        pol = more_sft(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5])
        print(json.dumps(classify(pol, 300), indent=1))
    else:
        print(json.dumps(classify(load_policy(sys.argv[1]), int(sys.argv[2])), indent=1))
