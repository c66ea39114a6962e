"""Does the verdict drill teach the verdict, and does a drill run until it has make the comparison phase's jump come
sooner? (research notes: the verdict's late jump)

    python drill_more.py START OUT [--more 500] [--max 1500] [--bar 85] [--compare 600] [--every 150]
                         [--seed 0] [--data-seed 1]

START is a base after the recipe's verdict drill (a recipe folder's `logs/base_drill/step_001000`). The text verdict
is measured on 200 held-out drill samples (`build_drill`, seed 30,000, no images, the reads written): % whose true
verdict and answer the policy scores above the flipped ones (chance 50). While it is below `--bar`, drill phases of
`--more` steps (the recipe's drill: text only, lr compare_drill_lr, vision and merger frozen, a fresh warm-up and
cosine, data seed 2000 + k) are added, up to `--max` steps; then the recipe's comparison phase (`--compare` steps)
runs with the recipe's verdict check (200 held-out comparisons with both crops) every `--every` steps (`--ground`:
the grounding check too, before the comparison phase and after it). `--seed` and `--data-seed`
are the recipe's (the run START came from: its step order and its comparison phase's samples). Writes
OUT.json as it goes (one process, one thread).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace


def text_verdict(policy, world, n: int = 200, seed: int = 30_000, batch: int = 16) -> float:
    import torch

    from r3lab.core.batch import collate
    from r3lab.core.trajectory import MODEL, Piece
    from r3lab.data.grounding import build_drill
    from r3lab.engine.scoring import TokenScorer, token_logprobs
    from r3lab.recipe.compare_check import flipped

    samples, scorer, right = build_drill(n, seed, world, policy.view, progress=False, reads=True), None, 0
    scorer, was = TokenScorer(policy.model), policy.model.training
    policy.model.eval()
    with torch.no_grad():
        for k in range(0, n, batch):
            trajs = []
            for s in samples[k : k + batch]:
                ref = s.reference(policy.view).tokenize(policy)
                alt, last = ref.copy(), ref.pieces[-1]
                text = flipped(last.text)
                alt.pieces[-1] = Piece(MODEL, text, ids=policy.encode(text), tag=last.tag)
                trajs += [ref, alt]
            scores = token_logprobs(scorer, collate(trajs, policy)).sum(-1)
            right += int((scores[0::2] > scores[1::2]).sum())
    policy.model.train(was)
    return round(100 * right / n, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--more", type=int, default=500)
    ap.add_argument("--max", type=int, default=1500)
    ap.add_argument("--bar", type=float, default=85.0)
    ap.add_argument("--compare", type=int, default=600)
    ap.add_argument("--every", type=int, default=150)
    ap.add_argument(
        "--recipe-check",
        action="store_true",
        help="measure the text verdict with the recipe's drill check (drill_check.text_verdict) instead",
    )
    ap.add_argument("--seed", type=int, default=0, help="the recipe's seed (step order)")
    ap.add_argument("--data-seed", type=int, default=1, help="the recipe's data seed (the comparison phase's samples)")
    ap.add_argument(
        "--ground", action="store_true", help="the grounding check (200 questions) after the drill and at the end"
    )
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from r3lab.data.grounding import build_base, build_drill
    from r3lab.model.policy import load_policy
    from r3lab.recipe import compare_check, ground_check
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.sft import train as train_sft

    c = RecipeConfig(out=f"/tmp/drill_more/{a.out.replace('/', '_')}", seed=a.seed, data_seed=a.data_seed)
    policy = load_policy(a.start, view=c.view_config())
    rec = {"start": a.start, "args": vars(a), "drill": [], "compare": []}
    t0 = time.time()

    def save(part, row):
        rec[part].append({**row, "seconds": round(time.time() - t0)})
        json.dump(rec, open(a.out + ".json", "w"), indent=1)
        print(part, rec[part][-1], flush=True)

    from r3lab.recipe import drill_check

    def drill_verdict():
        if a.recipe_check:
            return drill_check.text_verdict(
                policy, c.world_config(), c.phase("drill").check.n, reads=c.phase("drill").mix.reads
            )["text_verdict"]
        return text_verdict(policy, c.world_config())

    done, k = 0, 0
    save("drill", {"added_steps": 0, "text_verdict": drill_verdict()})
    while rec["drill"][-1]["text_verdict"] < a.bar and done < a.max:
        data = build_drill(
            a.more * c.base.batch,
            2000 + k,
            c.world_config(),
            policy.view,
            progress=False,
            reads=c.phase("drill").mix.reads,
        )
        cfg = replace(
            c.sft_config("probe", a.more, c.base.batch, c.phase("drill").lr, phase=f"drill{k}"),
            freeze_vision=True,
            freeze_merger=True,
            save_every=0,
            resume=False,
        )
        train_sft(policy, data, cfg)
        done, k = done + a.more, k + 1
        save("drill", {"added_steps": done, "text_verdict": drill_verdict()})

    def verdict():
        return compare_check.verdict_accuracy(policy, c.world_config(), c.phase("compare").check.n)["verdict"]

    def where():
        return ground_check.measure(policy, {**c.world, **c.base_world}, c.phase("ground").check.n)["centre_on_named"]

    save("compare", {"steps": 0, "verdict": verdict(), **({"centre_on_named": where()} if a.ground else {})})
    data = build_base(
        a.compare * c.base.batch,
        c.data_seed + 2,
        c.phase("read").mix.closeups,
        c.world_config(),
        view=policy.view,
        progress=False,
        comparisons=c.phase("compare").mix.comparisons,
        comparison_crops=c.phase("compare").mix.crops,
        closeup_style=c.phase("compare").mix.style,
        controls=c.phase("read").mix.controls,
    )
    cfg = replace(
        c.sft_config("probe", a.compare, c.base.batch, c.phase("ground").lr, phase="compare"),
        save_every=0,
        resume=False,
    )

    def cb(state, row):
        if state.step % a.every == 0 or state.step == a.compare:
            end = a.ground and state.step == a.compare
            save(
                "compare", {"steps": state.step, "verdict": verdict(), **({"centre_on_named": where()} if end else {})}
            )

    train_sft(policy, data, cfg, callbacks=[cb])


if __name__ == "__main__":
    main()
