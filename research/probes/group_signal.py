"""Where R-GRPO's learning signal is (research/miniature/gain): per held-out question, a group like R-GRPO's.

    python group_signal.py OUT.json N SFT_FOLDER [SFT_FOLDER ...]

For each SFT model and detail family (read_one, compare_two): N held-out questions (the recipe's eval seed), one
greedy rollout each (what the table scores) and a group of G = `group_size` rollouts at R-GRPO's own rollout
settings (`train_rollout`: T = 0.7). A group whose answers are all right or all wrong gives the accuracy reward no
spread, so GRPO learns nothing about the answer from it. Each greedy miss is split by its crops: "where" (a detail
the question asks about is in none of its crops) or "misread" (every one is in a crop), and for each kind the share
of its groups with a mixed outcome (some right, some wrong) is reported, with the mean share right in the group;
`sampled`: over all group rollouts, the share whose crops hold every detail, and the accuracy of those that do and
of those that do not.
"""

import json
import sys
import time
from dataclasses import asdict, replace

import torch

torch.set_num_threads(1)


def probe(sft: str, n: int) -> dict:
    from r3lab.core.env import seed_everything
    from r3lab.data.vlir import build_samples
    from r3lab.engine.config import RolloutConfig
    from r3lab.engine.rollouts import rollout
    from r3lab.evaluation.evaluation import EvalConfig, contains_detail, evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig
    from r3lab.train.metrics import rollout_values
    from r3lab.train.rewards import score

    c = RecipeConfig()
    pol = load_policy(sft, view=c.view_config())
    seed_everything(c.seed)
    fams = ["read_one", "compare_two"]
    held = build_samples(n * len(fams), c.eval_seed, fams, c.world_config(), view=pol.view, progress=False)
    terms = c.reward.terms()
    greedy = evaluate(
        pol,
        held,
        EvalConfig(rollout=asdict(c.eval_rollout), reward=c.reward, batch_rows=64, seed=c.seed),
        progress=False,
    ).trajectories
    G = c.rgrpo.group_size
    rcfg = RolloutConfig.of(c.train_rollout, group_size=G, batch_rows=64, seed=c.seed)
    groups = []
    for k, a in enumerate(range(0, len(held), 8)):  # 8 questions x G rows per batch
        groups += rollout(pol, held[a : a + 8], replace(rcfg, seed=c.seed + k), progress=False)
    g_acc = [v["accuracy"] for v in rollout_values(groups, score(groups, terms))]
    q_acc = [v["accuracy"] for v in rollout_values(greedy, score(greedy, terms))]

    def holds(t, s) -> bool:  # every detail of the question inside one of the trajectory's crops
        boxes = [p.info.box_orig for p in t.crops if p.info.box_orig is not None]
        return bool(s.details) and all(any(contains_detail(b, d) for b in boxes) for d in s.details)

    out = {}
    for fam in fams:
        rows = []
        for i, s in enumerate(held):
            if s.family != fam:
                continue
            right = g_acc[i * G : (i + 1) * G]
            kind = "right" if q_acc[i] == 1 else ("misread" if holds(greedy[i], s) else "where")
            rows.append((kind, sum(r == 1 for r in right) / G))
        row = {
            "n": len(rows),
            "greedy_accuracy": round(sum(k == "right" for k, _ in rows) / len(rows), 3),
            "mixed_groups": round(sum(0 < r < 1 for _, r in rows) / len(rows), 3),
        }
        for kind in ("right", "misread", "where"):
            sub = [r for k, r in rows if k == kind]
            row[kind] = {
                "n": len(sub),
                "mixed": round(sum(0 < r < 1 for r in sub) / len(sub), 3) if sub else None,
                "all_wrong": round(sum(r == 0 for r in sub) / len(sub), 3) if sub else None,
                "group_right": round(sum(sub) / len(sub), 3) if sub else None,
            }
        rolls = [
            (holds(groups[i * G + j], s), g_acc[i * G + j] == 1)
            for i, s in enumerate(held)
            if s.family == fam
            for j in range(G)
        ]
        hit = [r for h, r in rolls if h]
        miss = [r for h, r in rolls if not h]
        row["sampled"] = {
            "holds": round(len(hit) / len(rolls), 3),
            "accuracy": round(sum(r for _, r in rolls) / len(rolls), 3),
            "right_if_holds": round(sum(hit) / len(hit), 3) if hit else None,
            "right_if_not": round(sum(miss) / len(miss), 3) if miss else None,
        }
        out[fam] = row
    return out


if __name__ == "__main__":
    path, n, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    res = {}
    for f in folders:
        t = time.time()
        res[f] = {**probe(f, n), "seconds": round(time.time() - t)}
        json.dump(res, open(path, "w"), indent=1)
        print(f, json.dumps(res[f]), flush=True)
