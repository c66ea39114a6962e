"""When does the verdict jump, and do the grounding questions beside it hold it back? (research notes)

    python compare_jump.py START OUT [--device cuda] [--variants recipe focus ...] [--seed 1] [--every 150] \
        [--ground-every]

START is a base after the recipe's verdict drill (a recipe folder's `logs/base_drill/step_001000`). Each variant
runs a comparison stage of 600 steps from it in its own process (one thread), measuring the recipe's verdict check
(`compare_check.verdict_accuracy`, 200 held-out comparisons, bar 85 %) every `--every` steps and at the end of each
phase, and the grounding check (box centres on the named landmark, 200 questions) at the start and the end;
it writes OUT/<variant>.json as it goes:

  recipe     the recipe's comparison phase: 600 steps, a fresh warm-up and cosine; comparisons with both crops in
             half of the non-control samples, the rest close-ups (75 %, written as rationales) and grounding questions
  closeups1  the same with every non-comparison, non-control sample a close-up (no grounding questions)
  focus      300 steps as closeups1, then 300 steps as the recipe (each phase its own warm-up and cosine)
  share75    the recipe's phase with comparisons in 75 % of the non-control samples
  share100   comparisons in every non-control sample
  share75_lr2x  share75 at twice the recipe's base learning rate
  ground_first  250 steps of grounding questions (the grounding phase's world and samples), then 300 as the recipe
  ground_after  300 steps as the recipe, then 250 of grounding questions
  ground250     250 steps of grounding questions alone (START: a base after its comparison phase)
  r300          the recipe's 300-step comparison phase
  c50, c25, c0  the same with close-ups 50 / 25 / 0 % of the non-comparison samples (the rest grounding questions)
  r300_c0       the recipe's 300 steps, then a 150-step mixed phase: comparisons beside grounding questions alone
  r300_c25      the same with close-ups 25 % of the non-comparison samples in the mixed phase
  s33_c50       comparisons in a third of the non-control samples, close-ups in half of the rest
  s33_c67       the same with close-ups in two thirds of the rest

The reading phase's jump waited on the grounding questions beside it (FINDINGS, Reading): this asks the same of the
verdict. Phase k's samples come from data seed 1000 * seed + k (the recipe's own: data_seed + 2).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

PHASES = {  # variant -> its phases: (steps, overrides of the recipe's comparison data)
    "recipe": [(600, {})],
    "closeups1": [(600, {"closeups": 1.0})],
    "focus": [(300, {"closeups": 1.0}), (300, {})],
    "share75": [(600, {"comparisons": 0.75})],
    "share100": [(600, {"comparisons": 1.0})],
    "share75_lr2x": [(600, {"comparisons": 0.75, "lr": 2e-3})],
    "ground_first": [(250, {"ground": True}), (300, {})],
    "ground_after": [(300, {}), (250, {"ground": True})],
    "ground250": [(250, {"ground": True})],
    "r300": [(300, {})],
    "c50": [(300, {"closeups": 0.5})],
    "c25": [(300, {"closeups": 0.25})],
    "c0": [(300, {"closeups": 0.0})],
    "r300_c0": [(300, {}), (150, {"closeups": 0.0})],
    "r300_c25": [(300, {}), (150, {"closeups": 0.25})],
    "s33_c50": [(300, {"comparisons": 0.33, "closeups": 0.5})],
    "s33_c67": [(300, {"comparisons": 0.33, "closeups": 0.67})],
}


def rationale_read(policy, world, n: int = 100, seed: int = 20_000) -> float:
    """% of `n` held-out close-ups written as the comparison phase writes them (" The pattern is X.</think><answer>X
    </answer>") whose true class the policy scores highest, teacher-forced (the read check's scenes; chance 20)."""
    import torch

    from r3lab.core.batch import collate
    from r3lab.core.trajectory import MODEL, Piece
    from r3lab.data.grounding import closeup_sample
    from r3lab.data.tasks import TaskConfig, answer_classes
    from r3lab.engine.scoring import TokenScorer, token_logprobs

    classes, scorer, right = list(answer_classes(world, TaskConfig().read_kinds[0])), TokenScorer(policy.model), 0
    with torch.no_grad():
        for i in range(n):
            s = closeup_sample(seed, i, world, policy.view, style="rationale")
            ref, true = s.reference(policy.view).tokenize(policy), s.answers[0]
            trajs = []
            for k in classes:  # the same conclusion and answer with each class
                t, text = ref.copy(), ref.pieces[-1].text.replace(true, k)
                t.pieces[-1] = Piece(MODEL, text, ids=policy.encode(text), tag="answer")
                trajs.append(t)
            right += classes[int(token_logprobs(scorer, collate(trajs, policy)).sum(-1).argmax())] == true
    return round(100 * right / n, 1)


def run(
    start: str,
    out: str,
    variant: str,
    seed: int,
    device: str,
    every: int,
    n_check: int = 200,
    scale: float = 1.0,
    ground_every: bool = False,
    read: int = 0,
) -> None:
    import torch

    torch.set_num_threads(1)
    from r3lab.core.env import seed_everything
    from r3lab.data.grounding import build_base
    from r3lab.model.policy import load_policy
    from r3lab.recipe import compare_check, ground_check
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.sft import train as train_sft

    c = RecipeConfig.from_settings(
        out=f"/tmp/compare_jump/{Path(out).name}/{variant}",  # logs: not in OUT
        **{"compare.check.n": n_check, "ground.check.n": n_check},
    )
    policy = load_policy(start, view=c.view_config(), device=device)
    seed_everything(seed)
    path = Path(out) / f"{variant}.json"
    rec = {"start": start, "variant": variant, "phases": PHASES[variant], "seed": seed, "device": device, "checks": []}
    t0, done = time.time(), 0

    def where():
        return ground_check.measure(policy, {**c.world, **c.base_world}, c.phase("ground").check.n)["centre_on_named"]

    def verdict():
        return compare_check.verdict_accuracy(policy, c.world_config(), c.phase("compare").check.n)["verdict"]

    def check(steps: int, ground: bool = False) -> None:
        was = policy.model.training
        policy.model.eval()
        row = {"steps": steps, "verdict": verdict(), "seconds": round(time.time() - t0)}
        if ground:
            row["centre_on_named"] = where()
        if read:
            row["rationale_read"] = rationale_read(policy, c.world_config(), read)
        policy.model.train(was)
        rec["checks"].append(row)
        path.write_text(json.dumps(rec, indent=1))
        print(f"{variant}: {row}", flush=True)

    rec["start_centre_on_named"] = where()
    if read:
        policy.model.eval()
        rec["start_rationale_read"] = rationale_read(policy, c.world_config(), read)
    for k, (n, o) in enumerate(PHASES[variant]):
        n = max(1, round(n * scale))
        if o.get("ground"):  # the recipe's added grounding phase's samples (ground_more)
            data = build_base(
                n * c.base.batch,
                1000 * seed + k,
                c.phase("ground").mix.closeups,
                c.world_config(base=True),
                view=policy.view,
                pairs=c.phase("ground").mix.pairs,
                progress=False,
            )
        else:
            data = build_base(
                n * c.base.batch,
                1000 * seed + k,
                o.get("closeups", c.phase("read").mix.closeups),
                c.world_config(),
                view=policy.view,
                progress=False,
                comparisons=o.get("comparisons", c.phase("compare").mix.comparisons),
                comparison_crops=c.phase("compare").mix.crops,
                closeup_style=c.phase("compare").mix.style,
                controls=c.phase("read").mix.controls,
            )
        cfg = replace(
            c.sft_config("probe", n, c.base.batch, o.get("lr", c.phase("ground").lr), phase=f"compare{k}"),
            seed=seed + k,
            save_every=0,
            resume=False,
        )
        base = done

        def cb(state, row, base=base, n=n):
            if state.step % every == 0 and state.step < n:
                check(base + state.step, ground=ground_every)

        train_sft(policy, data, cfg, callbacks=[cb])
        done += n
        check(
            done,
            ground=ground_every or k == len(PHASES[variant]) - 1 or any(o.get("ground") for _, o in PHASES[variant]),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variants", nargs="+", default=list(PHASES), choices=list(PHASES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=int, default=150, help="verdict checks inside a phase, every this many steps")
    ap.add_argument("--check", type=int, default=200, help="held-out questions of each check")
    ap.add_argument("--ground-every", action="store_true", help="the grounding check at every check, not only the last")
    ap.add_argument(
        "--read",
        type=int,
        default=0,
        help="with each check, the read in the rationale style on this many held-out close-ups (0: not measured)",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="each phase's steps times this (a smoke run: 0.01)")
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=run, args=(a.start, a.out, v, a.seed, a.device, a.every, a.check, a.scale, a.ground_every, a.read)
        )
        for v in a.variants
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
