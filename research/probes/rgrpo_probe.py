"""R-GRPO probes (research notes, session 7): what R-GRPO does to a recipe's SFT model.

    python rgrpo_probe.py SFT_FOLDER OUT_DIR N [key=json ...]    # e.g. steps=600 lr_lm=4e-5 hard_share=0.5
    python rgrpo_probe.py phase BASE_FOLDER STEPS OUT_DIR          # more steps of the comparison phase

The first form runs the recipe's R-GRPO stage (RecipeConfig's defaults: 300 steps of 4 questions x G=8, lr 2e-5,
rollouts at T=0.7 (`train_rollout`), the vision tower and merger trained too (`rgrpo_vision`), GIoU region reward)
from SFT_FOLDER with RGRPOConfig overrides (`rollout={...}` its rollout settings, whole;
`families="read_one,compare_two"` changes the training questions, `rgrpo_mix={"read_one": 2}` their shares;
`recipe={"seed": 1, "data_seed": 21}` another run's seeds; `device="cuda"` on a GPU;
`hard_share=0.5` trains on the SFT's greedy misses among the training questions, made that share of them with
the others drawn at random), then evaluates greedily on N held-out questions per family (seed 999)
and writes OUT_DIR/result.json; `steps=0` evaluates the SFT model itself; `eval_temperatures=[0,1]` also
samples one answer per question at T=1 (`rows_t1`: the IoU of the crops R-GRPO's rollouts make). The second form
continues a base model's comparison phase (the recipe's mix: half comparisons with both crops, half close-ups and
grounding; a fresh warm-up and cosine at lr 1e-3, batch 32, a data seed the recipe never uses) and saves
OUT_DIR/base;
`compare_probe.py`-style verdict checks then compare it with the base it started from.
"""

import json
import os
import sys
import time

import torch

torch.set_num_threads(1)


def rgrpo(sft: str, out: str, n: int, overrides: dict) -> dict:
    from dataclasses import asdict

    from r3lab.core.env import seed_everything
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import EvalConfig, evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig
    from r3lab.train import RGRPOConfig, train_rgrpo

    kw = dict(overrides)
    c = RecipeConfig.from_settings(**kw.pop("recipe", {}))  # recipe={"seed": 1, "data_seed": 21}: another run's seeds
    fams = kw.pop("families", c.families).split(",")
    mix = {f: w for f, w in kw.pop("rgrpo_mix", c.rgrpo.mix).items() if f in fams}  # the recipe's `rgrpo_mix`
    temps = kw.pop("eval_temperatures", [0.0])  # 1.0 too: the IoU of the policy's sampled crops (what R-GRPO trains)
    hard = kw.pop("hard_share", 0.0)  # > 0: train on the SFT's greedy misses, this share of the questions
    pol = load_policy(sft, view=c.view_config(), device=kw.pop("device", None))  # device="cuda": GPU numerics
    seed_everything(c.seed)
    base = asdict(c.rgrpo_config("rgrpo"))  # the recipe's R-GRPO stage, then the probe's overrides by field
    cfg = RGRPOConfig(**{**base, "micro_rows": 16, "out_dir": out + "/logs", **kw})
    t = time.time()
    info = {}
    if cfg.steps:
        train = build_samples(
            c.n_train, c.data_seed, fams, c.world_config(), view=pol.view, progress=False, weights=mix or None
        )
        if hard:
            train, info = hard_questions(pol, train, hard, c)
        train_rgrpo(pol, train, cfg)
        pol.save(out + "/model")
    held = build_samples(
        n * len(c.family_list), c.eval_seed, c.family_list, c.world_config(), view=pol.view, progress=False
    )
    keys = ("accuracy", "accuracy_lo", "accuracy_hi", "crop_rate", "crop_iou", "crop_iou_lo", "crop_iou_hi", "reward")
    out = {"sft": sft, "overrides": overrides, "train_s": round(time.time() - t), "n": n, **info}
    for temp in temps:
        res = evaluate(
            pol,
            held,
            EvalConfig(
                rollout={**asdict(c.eval_rollout), "temperature": temp}, reward=c.reward, batch_rows=64, seed=c.seed
            ),
            progress=False,
        )
        rows = {f: {k: round(v, 3) for k, v in r.items() if k in keys} for f, r in res.rows.items()}
        out["rows" if temp == 0 else f"rows_t{temp:g}"] = rows
    return out


def hard_questions(pol, train: list, share: float, c) -> tuple[list, dict]:
    """The training questions the SFT answers wrong greedily (detail families), with as many of the others drawn
    at random as make them `share` of the list (control questions count among the others)."""
    import random
    from dataclasses import asdict

    from r3lab.evaluation.evaluation import EvalConfig, evaluate
    from r3lab.train.metrics import rollout_values
    from r3lab.train.rewards import score

    detail = [s for s in train if s.family != "control"]
    res = evaluate(
        pol,
        detail,
        EvalConfig(rollout=asdict(c.eval_rollout), reward=c.reward, batch_rows=64, seed=c.seed),
        progress=False,
    )
    acc = [v["accuracy"] for v in rollout_values(res.trajectories, score(res.trajectories, c.reward.terms()))]
    missed = {s.sample_id for s, a in zip(detail, acc) if a != 1}
    hard = [s for s in train if s.sample_id in missed]
    rest = [s for s in train if s.sample_id not in missed]
    rng = random.Random(c.seed)
    keep = hard + rng.sample(rest, min(len(rest), round(len(hard) * (1 - share) / share)))
    rng.shuffle(keep)
    fams = sorted({s.family for s in train})
    return keep, {
        "hard": {
            "questions": len(train),
            "missed": {f: sum(s.family == f for s in hard) for f in fams},
            "kept": len(keep),
        }
    }


def phase(base: str, steps: int, out: str) -> None:
    from r3lab.core.env import seed_everything
    from r3lab.data.grounding import build_base
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig
    from r3lab.train import SFTConfig, train_sft

    c = RecipeConfig()
    pol = load_policy(base, view=c.view_config())
    seed_everything(c.seed)
    data = build_base(
        steps * c.base.batch,
        c.data_seed + 5,
        c.phase("read").mix.closeups,
        c.world_config(),
        view=pol.view,
        progress=False,
        comparisons=c.phase("compare").mix.comparisons,
        comparison_crops=True,
    )
    train_sft(
        pol,
        data,
        SFTConfig(
            steps=steps,
            batch_size=c.base.batch,
            lr_lm=c.phase("ground").lr,
            lr_merger=c.phase("ground").lr,
            lr_vision=c.phase("ground").lr,
            autocast=c.autocast,
            warmup=min(50, max(1, steps // 10)),
            seed=c.seed,
            log_every=10,
            save_every=200,
            out_dir=out + "/logs",
            resume="auto",
        ),
    )
    pol.save(out + "/base")


if __name__ == "__main__":
    if sys.argv[1] == "phase":
        phase(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        folder, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        result = rgrpo(folder, out, n, {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[4:])})
        os.makedirs(out, exist_ok=True)  # steps=0 trains nothing, so nothing made the folder
        print(json.dumps(result, indent=1))
        with open(out + "/result.json", "w") as f:
            json.dump(result, f, indent=1)
