"""Read probe: how fast does a policy learn to read a detail from its zoomed crop, and is the zoom necessary?

    python research/probes/read_probe.py START STEPS OUT [WORLD_JSON] [TASKS_JSON] [CLOSEUPS]

Trains START (a checkpoint folder) on the base stage's read exercises (`build_base`: close-ups, the crop given,
answered with the detail's class; the rest grounding questions) in the given world, 32 samples a step at lr
1e-3, and every STEPS/4 steps measures on 120 held-out close-ups: accuracy (argmax over the classes of the
teacher-forced log-prob of "<class><|im_end|>"), and the read's importance over the coarse view and over a
blank view (`explain_crops(score="read")`: log p(read | zoom) - log p(read | counterfactual)). Writes OUT.json.
"""

import json
import statistics
import sys
import time

import torch

import r3lab
from r3lab.core.batch import collate
from r3lab.core.trajectory import IMAGE, MODEL, Piece
from r3lab.data.grounding import build_base, closeup_sample
from r3lab.data.tasks import TaskConfig, answer_classes
from r3lab.data.world import WorldConfig
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.explain.swaps import _variant_image
from r3lab.train import SFTConfig


def main() -> None:
    r3lab.configure_threads()
    start, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    world = WorldConfig(**json.loads(sys.argv[4])) if len(sys.argv) > 4 else WorldConfig()
    tasks = TaskConfig(**json.loads(sys.argv[5])) if len(sys.argv) > 5 and sys.argv[5] else TaskConfig()
    closeups = float(sys.argv[6]) if len(sys.argv) > 6 else 0.75
    pol = r3lab.load_policy(start)
    classes = list(answer_classes(world, tasks.read_kinds[0]))
    held = [closeup_sample(424242, i, world, pol.view) for i in range(120)]
    rec = {"start": start, "steps": steps, "world": world.to_dict(), "classes": classes, "evals": []}

    def measure(step):
        pol.model.eval()
        right, imps = 0, {"coarse": [], "blank": []}
        scorer = TokenScorer(pol.model)
        for s in held:
            ref = s.reference(pol.view).tokenize(pol)
            trajs = []
            for c in classes:
                t = ref.copy()
                t.pieces[-1] = Piece(MODEL, c + "<|im_end|>", ids=pol.encode(c + "<|im_end|>"), tag="answer")
                trajs.append(t)
            ip = max(i for i, p in enumerate(ref.pieces) if p.kind == IMAGE)
            old = ref.pieces[ip]
            for v in imps:  # the true answer with the crop swapped for the counterfactual view
                t = ref.copy()
                im = _variant_image(v, ref, old, pol.view, [])
                t.pieces[ip] = Piece(
                    IMAGE, image=im.resize(tuple(old.info.input_size)), info=old.info, ids=old.ids, tag=old.tag
                )
                trajs.append(t)
            with torch.no_grad():
                lp = token_logprobs(scorer, collate(trajs, pol)).sum(-1)
            k = len(classes)
            right += classes[int(lp[:k].argmax())] == s.answers[0]
            true = float(lp[classes.index(s.answers[0])])
            for j, v in enumerate(imps):
                imps[v].append(true - float(lp[k + j]))
        row = {"step": step, "acc": right / len(held)}
        for k, v in imps.items():
            row[k] = {
                "mean": statistics.mean(v),
                "median": statistics.median(v),
                "share_gt_0.5": sum(x > 0.5 for x in v) / len(v),
            }
        rec["evals"].append(row)
        print(json.dumps(row), flush=True)

    measure(0)
    if steps == 0:
        json.dump(rec, open(out + ".json", "w"), indent=1)
        sys.exit(0)
    data = build_base(steps * 32, 1, closeups, world, pol.view, pairs=0.0, progress=False)
    t0 = time.time()
    for k in range(4):
        cfg = SFTConfig(
            steps=steps // 4,
            batch_size=32,
            lr_lm=1e-3,
            lr_merger=1e-3,
            lr_vision=1e-3,
            autocast=True,
            warmup=min(30, steps // 8),
            seed=k,
            log_every=25,
        )
        r3lab.train_sft(pol, data[k * len(data) // 4 : (k + 1) * len(data) // 4], cfg)
        measure((k + 1) * steps // 4)
    rec["seconds"] = time.time() - t0
    json.dump(rec, open(out + ".json", "w"), indent=1)


if __name__ == "__main__":
    main()
