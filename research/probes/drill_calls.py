"""Does a verdict drill with its crop calls given keep the grounding? (research notes)

    python drill_calls.py START OUT.json [--drill 1000] [--seed 1] [--given-calls] [--ground-share 0.25]

START is a base after the recipe's read phase (a recipe folder's `logs/base_read/step_000200`). The recipe's drill
(`build_drill(reads=True)`: the whole compare_two rationale without images, supervised) teaches the box from text
alone and takes the grounding answer away (FINDINGS: comparison). With `--given-calls` each crop call becomes
environment text (not supervised); the reads and the verdict stay the model's. With `--ground-share S` that share
of the drill's samples are grounding questions with their images instead (`grounding_sample`, the base's pair
share; the vision tower and merger stay frozen, as in the drill), so the drill keeps asking for calls that look at
the image. After the drill: the text verdict
(`drill_check`, 200), box centres on the named landmark (200) and the read in both written forms (100, chance 20).
Data seed 3000 * seed + 1 (read_form.py's drill). One process, one thread; OUT.json as it goes.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

CALL = re.compile(r'\{"bbox_2d": \[[^\]]*\]\}')


def given_calls(sample):
    """`sample` with each crop call in its model pieces moved into an environment piece of its own."""
    from r3lab.core.trajectory import ENV, MODEL, Piece

    pieces = []
    for p in sample.rationale:
        if p.kind != MODEL or not CALL.search(p.text):
            pieces.append(p)
            continue
        at = 0
        for m in CALL.finditer(p.text):
            if m.start() > at:
                pieces.append(Piece(MODEL, p.text[at : m.start()], tag=p.tag))
            pieces.append(Piece(ENV, m.group(0), tag="given"))
            at = m.end()
        if at < len(p.text):
            pieces.append(Piece(MODEL, p.text[at:], tag=p.tag))
    return replace(sample, rationale=pieces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--drill", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--given-calls", action="store_true")
    ap.add_argument("--ground-share", type=float, default=0.0)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from compare_jump import rationale_read

    from r3lab.core.env import seed_everything
    from r3lab.data.grounding import build_drill, grounding_sample
    from r3lab.model.policy import load_policy
    from r3lab.recipe import drill_check, ground_check, read_check
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.sft import train as train_sft

    c = RecipeConfig(out=f"/tmp/drill_calls/{Path(a.out).stem}")  # logs: not in OUT
    policy = load_policy(a.start, view=c.view_config())
    seed_everything(a.seed)
    rec, t0 = (
        {
            "start": a.start,
            "drill": a.drill,
            "seed": a.seed,
            "given_calls": a.given_calls,
            "ground_share": a.ground_share,
            "checks": [],
        },
        time.time(),
    )

    def check(phase: str) -> None:
        policy.model.eval()
        world = c.world_config()
        row = {
            "after": phase,
            "text_verdict": drill_check.text_verdict(policy, world, 200)["text_verdict"],
            "centre_on_named": ground_check.measure(policy, {**c.world, **c.base_world}, 200)["centre_on_named"],
            "read_answer_form": read_check.read_accuracy(policy, world, 100)["read_accuracy"],
            "read_rationale_form": rationale_read(policy, world, 100),
            "seconds": round(time.time() - t0),
        }
        policy.model.train()
        rec["checks"].append(row)
        Path(a.out).write_text(json.dumps(rec, indent=1))
        print(row, flush=True)

    data = build_drill(
        a.drill * c.base.batch,
        3000 * a.seed + 1,
        c.world_config(),
        policy.view,
        progress=False,
        reads=c.phase("drill").mix.reads,
    )
    if a.given_calls:
        data = [given_calls(s) for s in data]
    if a.ground_share:  # each draw by index: the drill's other samples are the same as without them
        import random

        data = [
            grounding_sample(3000 * a.seed + 2, i, c.world_config(base=True), policy.view, c.phase("pairs").mix.pairs)
            if random.Random(f"drill-ground:{a.seed}:{i}").random() < a.ground_share
            else s
            for i, s in enumerate(data)
        ]
    rec["example"] = [(p.kind, p.text) for p in data[0].rationale]
    cfg = replace(
        c.phase_config("probe", replace(c.phase("drill"), steps=a.drill)), seed=a.seed + 1, save_every=0, resume=False
    )
    train_sft(policy, data, cfg)
    check(f"{a.drill} drill steps")


if __name__ == "__main__":
    main()
