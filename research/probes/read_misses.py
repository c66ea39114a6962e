"""Why a model misses read_one (research notes, session 17).

    python read_misses.py MODEL_FOLDER N      # the recipe's held-out seed 999, N read_one questions

Greedy evaluation with the recipe's settings; every answer is sorted by right / wrong, whether one of its crops
holds the detail ("held" / "missed"), and whether the rationale's "... is <colour>." agrees with the answer
(a copy error otherwise). Prints JSON: the counts, per right / wrong the first crop's mean IoU with the
reference region and its median area over the region's, and the first misses.
"""

import collections
import json
import re
import sys

import torch


def main() -> None:
    torch.set_num_threads(1)
    from r3lab.core.regions import box_area, box_iou
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.evaluation import EvalConfig, contains_detail, evaluate
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe import RecipeConfig

    model, n = sys.argv[1], int(sys.argv[2])
    c = RecipeConfig()
    pol = load_policy(model, view=c.view_config())
    samples = build_samples(n, c.eval_seed, ["read_one"], c.world_config(), view=pol.view, progress=False)
    res = evaluate(pol, samples, EvalConfig(rollout=c.eval_rollout), progress=False)
    by = {s.sample_id: s for s in samples}
    counts, geo, misses = collections.Counter(), {}, []
    for t in res.trajectories:
        s = by[t.sample_id]
        ans = (t.final_answer() or "").strip().lower()
        ok = ans == s.answers[0].strip().lower()
        boxes = [p.info.box_orig for p in t.crops if p.info.box_orig is not None]
        held = any(contains_detail(b, d) for b in boxes for d in s.details)
        said = m.group(1).lower() if (m := re.search(r"is (\w+)\.</think>", t.model_text())) else None
        counts[
            ("right" if ok else "wrong", "held" if held else "missed", "said=answer" if said == ans else "said!=answer")
        ] += 1
        if boxes and s.regions:
            geo.setdefault("right" if ok else "wrong", []).append(
                (box_iou(boxes[0], s.regions[0]), box_area(boxes[0]) / box_area(s.regions[0]))
            )
        if not ok and len(misses) < 8:
            misses.append(
                {"truth": s.answers[0], "answer": ans, "said": said, "held": held, "text": t.model_text()[-160:]}
            )
    print(
        json.dumps(
            {
                "model": model,
                "n": n,
                "acc": res.rows["read_one"]["accuracy"],
                "stats": {" / ".join(k): v for k, v in sorted(counts.items())},
                "geo": {
                    k: {
                        "first_crop_iou": round(sum(x[0] for x in v) / len(v), 3),
                        "median_area_ratio": round(sorted(x[1] for x in v)[len(v) // 2], 2),
                        "n": len(v),
                    }
                    for k, v in geo.items()
                },
                "examples": misses,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
