"""Comparison-phase probe: when does the base learn the verdict over two gratings?

    [DRILL=N] python research/probes/compare_phase.py START STEPS SHARE OUT [EVERY] [LR] [CROPS]

From START (a checkpoint folder: the recipe's base after its read phase, e.g. RUN/logs/base_read/step_000600)
trains the recipe's comparison phase (`build_base` as `Recipe._read_data` builds it: 3 in 4 of the others
close-ups written as rationales, 15 % control questions, comparisons with both crops in place with probability
SHARE; 32 a step, lr 1e-3, one warm-up and cosine over STEPS) and every EVERY steps measures, on 200 held-out
comparisons (both crops given, seed 424242), how often the teacher-forced log-prob of the true verdict and answer
beats that of the flipped one (`verdict`; `verdict_text`: on 200 held-out comparisons without images). CROPS=0
trains on text-only comparisons (the reads given as text; measured with both crops in place all the same). DRILL=N
first trains N steps of the recipe's verdict drill (`build_drill`: the comparisons without images, same lr),
measured at its end. Writes OUT.json.
"""

import json
import os
import sys
import time

import torch

import r3lab
from r3lab.core.batch import collate
from r3lab.core.trajectory import MODEL, Piece
from r3lab.data.grounding import build_base, build_drill, comparison_sample
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.train import SFTConfig

FLIP = [
    ("so they are the same.", "so they are different."),
    (" too: the same ", ": a different "),
    ("<answer>yes</answer>", "<answer>no</answer>"),
]


def flipped(text: str) -> str:
    for a, b in FLIP:
        if a in text:
            text = text.replace(a, b)
        elif b in text:
            text = text.replace(b, a)
    return text


def verdict_accuracy(pol, held, batch=16) -> float:
    pol.model.eval()
    scorer, right = TokenScorer(pol.model), 0
    for k in range(0, len(held), batch):
        trajs = []
        for s in held[k : k + batch]:
            ref = s.reference(pol.view).tokenize(pol)
            alt = ref.copy()
            last = ref.pieces[-1]
            text = flipped(last.text)
            alt.pieces[-1] = Piece(MODEL, text, ids=pol.encode(text), tag=last.tag)
            trajs += [ref, alt]
        with torch.no_grad():
            tot = token_logprobs(scorer, collate(trajs, pol)).sum(-1)  # over the model's tokens (loss mask)
        right += int((tot[0::2] > tot[1::2]).sum())
    pol.model.train()
    return right / len(held)


def main():
    r3lab.configure_threads()
    start, steps, share, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    every = int(sys.argv[5]) if len(sys.argv) > 5 else max(1, steps // 4)
    lr = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-3
    crops = sys.argv[7] != "0" if len(sys.argv) > 7 else True
    pol = r3lab.load_policy(start)
    held = [comparison_sample(424242, i, view=pol.view, crops=True) for i in range(200)]
    rec = {"start": start, "steps": steps, "share": share, "lr": lr, "crops": crops, "evals": []}

    held_text = build_drill(200, 424242, view=pol.view, progress=False)  # held-out comparisons without images

    def measure(step):
        row = {
            "step": step,
            "verdict": verdict_accuracy(pol, held),
            "verdict_text": verdict_accuracy(pol, held_text),
            "wall": round(time.time() - t0),
        }
        rec["evals"].append(row)
        print(json.dumps(row), flush=True)
        json.dump(rec, open(out + ".json", "w"), indent=1)

    t0 = time.time()
    measure(0)
    if drill := int(os.environ.get("DRILL", "0")):
        rec["drill"] = drill
        cfg = SFTConfig(
            steps=drill,
            batch_size=32,
            lr_lm=lr,
            lr_merger=lr,
            lr_vision=lr,
            autocast=True,
            warmup=min(50, max(1, drill // 10)),
            seed=0,
            log_every=10,
        )
        r3lab.train_sft(
            pol,
            build_drill(drill * 32, 6, view=pol.view, progress=False),
            cfg,
            callbacks=[lambda state, row: state.step % every or measure(-drill + state.step)],
        )
    if not steps:
        return
    data = build_base(
        steps * 32,
        3,
        0.75,
        view=pol.view,
        pairs=0.0,
        progress=False,
        comparisons=share,
        comparison_crops=crops,
        closeup_style="rationale",
        controls=0.15,
    )
    cfg = SFTConfig(
        steps=steps,
        batch_size=32,
        lr_lm=lr,
        lr_merger=lr,
        lr_vision=lr,
        autocast=True,
        warmup=min(50, max(1, steps // 10)),
        seed=0,
        log_every=10,
    )

    def cb(state, row):
        if state.step % every == 0:
            measure(state.step)

    r3lab.train_sft(pol, data, cfg, callbacks=[cb])
    rec["seconds"] = round(time.time() - t0)
    json.dump(rec, open(out + ".json", "w"), indent=1)


if __name__ == "__main__":
    main()
