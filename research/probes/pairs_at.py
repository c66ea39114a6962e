"""Two-landmark grounding ("Where are the A and the B?", research notes, session 11), optionally after a phase.

    python pairs_at.py CHECKPOINT N                        # measure
    python pairs_at.py CHECKPOINT N STEPS SHARE OUT        # then STEPS grounding steps, SHARE of them pairs

Prints the share of questions whose first box centres on the first named landmark, both boxes on theirs in
order (and in either order), next to the one-landmark check the recipe runs (`ground_check.measure`), for the
base's world (`world` + `base_world`) and today's `RecipeConfig` prompt. The second form trains as the
recipe's pairs phase does (batch 32, lr 1e-3, fresh warm-up and cosine, a data seed the recipe never uses) and
measures again.
"""

import json
import re
import sys

import torch

torch.set_num_threads(1)
CALL = re.compile(r'bbox_2d"\s*:\s*\[([^\]]*)\]')


def _on(box, region) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def pairs(policy, world, n: int, seed: int = 777) -> dict:
    from where_probe import generate_text

    from r3lab.core.regions import Frame
    from r3lab.data.grounding import grounding_sample
    from r3lab.data.world import region_input_box

    samples = [
        s for s in (grounding_sample(seed, i, world, policy.view, pairs=1.0) for i in range(n)) if len(s.regions) == 2
    ]
    texts = generate_text(policy, [dict(scene=s.image, question=s.question) for s in samples], 48)
    first = ordered = either = 0
    for s, text in zip(samples, texts):
        frame = Frame.of(s.image.size, policy.view)
        a, b = (region_input_box(r, frame) for r in s.regions)
        boxes = []
        for m in CALL.findall(text):
            try:
                boxes.append([float(v) for v in m.split(",")])
            except ValueError:
                pass
        first += bool(boxes) and _on(boxes[0], a)
        if len(boxes) >= 2:
            ordered += _on(boxes[0], a) and _on(boxes[1], b)
            either += (_on(boxes[0], a) and _on(boxes[1], b)) or (_on(boxes[0], b) and _on(boxes[1], a))
    k = len(samples)
    return {
        "n": k,
        "first_on_first": round(100 * first / k, 1),
        "both_in_order": round(100 * ordered / k, 1),
        "both_either_order": round(100 * either / k, 1),
    }


def measure(policy, n: int) -> dict:
    from r3lab.recipe.ground_check import measure as one
    from r3lab.recipe.recipe_config import RecipeConfig

    c = RecipeConfig()
    return {"pairs": pairs(policy, c.world_config(base=True), n), "one": one(policy, {**c.world, **c.base_world}, n)}


if __name__ == "__main__":
    from r3lab.data.grounding import build_base
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.config import SFTConfig
    from r3lab.train.sft import train

    pol, n = load_policy(sys.argv[1]), int(sys.argv[2])
    result = {"before": measure(pol, n)}
    print(json.dumps(result), flush=True)
    if len(sys.argv) > 3:
        steps, share, out, c = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], RecipeConfig()
        data = build_base(
            steps * c.base.batch, 50, 0.0, c.world_config(base=True), view=pol.view, pairs=share, progress=False
        )
        train(
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
                save_every=0,
                out_dir=out,
                resume="auto",
            ),
        )
        result["after"] = {"steps": steps, "share": share, **measure(pol, n)}
        print(json.dumps(result), flush=True)
