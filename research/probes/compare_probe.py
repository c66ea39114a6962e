"""compare_two probes (research notes, session 6).

    # text only: how fast the tiny LM learns the verdict
    python compare_probe.py text TEMPLATE STEPS OUT.json [pattern]
    python compare_probe.py diag CHECKPOINT N OUT.json [oracle|own]   # what a checkpoint gets wrong

`text`: the language model of the shipped base trains on compare_two rationales written as text (no images;
batch 32, AdamW lr 5e-4, loss on every token) and is scored every 100 steps on 300 held-out rationales:
does it prefer the right verdict's first token after the second colour? Templates: A (the reference
rationale's two endings), B ("The first was {ca}, so they are ...": the first colour copied next to the
second).
`diag`: greedy rollouts on N compare_two questions (seed 999), with ground-truth crops (oracle) or the
model's own; parses the two colours the model wrote and reports how often each read is right and how
often the verdict agrees with the model's own two reads, and how often its first / second crop holds the
first / second mark.
"""

import json
import random
import re
import sys

import torch

torch.set_num_threads(1)
COL = ["red", "green", "blue", "yellow", "black", "white"]
PATTERNS = ["horizontal", "vertical", "rising", "falling", "checked"]  # the grating world's read classes
OBJ = ["red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "brown"]
SHAPES = ["square", "circle", "triangle", "diamond"]


def text_probe(template: str, steps: int, out: str, lr: float = 5e-4, words: list = COL, first: tuple = ()) -> list:
    """`first`: (words, steps) trained before `words` (the held-out rationales use `words` throughout)."""
    import os

    from r3lab.model.policy import load_policy

    pol = load_policy(os.environ.get("START", "assets/checkpoints/r3-tiny-base"))  # START / SAVE: from / to a folder
    model, tok = pol.model, pol.tokenizer

    def box(r):
        return '{"bbox_2d": [%d, %d, %d, %d]}' % tuple(sorted(r.sample(range(10, 110), 4)))

    def sample(r, words=words):
        same = r.random() < 0.5
        ca = r.choice(words)
        cb = ca if same else r.choice([c for c in words if c != ca])
        a, b = (f"{r.choice(OBJ)} {r.choice(SHAPES)}" for _ in range(2))
        head = f"<think>Let me look at the mark on the {a} first. {box(r)} It is {ca}. Now the {b}. {box(r)}"
        if template == "A" and r.random() < 0.5:
            pre, yes, no = f" It is {cb}, so they are", " the same.", " different."
        elif template == "A":
            pre, yes, no = f" This one is {cb}", " too: the same colour.", ": a different colour."
        else:
            pre, yes, no = f" It is {cb}. The first was {ca}, so they are", " the same.", " different."
        return head + pre, (yes if same else no), (no if same else yes)

    def ids(text):
        return tok.encode(text, add_special_tokens=False)

    held = [sample(random.Random(f"held:{i}")) for i in range(300)]

    @torch.no_grad()
    def accuracy():
        model.eval()
        ok = 0
        for pre, good, bad in held:
            lp = model(input_ids=torch.tensor([ids(pre)])).logits[0, -1].float()
            ok += int(lp[ids(good)[0]] > lp[ids(bad)[0]])
        model.train()
        return ok / len(held)

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    r, log = random.Random(0), []
    for step in range(1, steps + 1):
        now = first[0] if first and step <= first[1] else words
        rows = [ids(pre + good + "</think>") for pre, good, _ in (sample(r, now) for _ in range(32))]
        width = max(map(len, rows))
        x = torch.full((len(rows), width), pol.pad_id)
        y = torch.full((len(rows), width), -100)
        for i, row in enumerate(rows):
            x[i, : len(row)] = y[i, : len(row)] = torch.tensor(row)
        loss = model(input_ids=x, attention_mask=(y != -100).long(), labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log.append({"step": step, "loss": round(loss.item(), 3), "verdict_accuracy": accuracy()})
            print(template, log[-1], flush=True)
            json.dump({"template": template, "lr": lr, "batch": 32, "log": log}, open(out, "w"), indent=1)
    if os.environ.get("SAVE"):
        pol.save(os.environ["SAVE"])
    return log


def diag(checkpoint: str, n: int, out: str, mode: str = "oracle") -> dict:
    from r3lab.data.vlir import build_samples
    from r3lab.evaluation.ablations import oracle_boxes
    from r3lab.evaluation.evaluation import EvalConfig, contains_detail, evaluate
    from r3lab.model.policy import load_policy

    pol = load_policy(checkpoint)
    samples = build_samples(n, 999, ["compare_two"], view=pol.view, progress=False)
    res = evaluate(
        pol,
        samples,
        EvalConfig(max_crops=2, max_new_tokens=128, batch_rows=64),
        progress=False,
        crop_boxes=oracle_boxes(pol.view) if mode == "oracle" else None,
    )
    c = dict.fromkeys(
        [
            "first_crop_on_detail",
            "second_crop_on_detail",
            "both_crops_on_detail",
            "first_read",
            "second_read",
            "both_reads",
            "parsed",
            "verdict_agrees",
            "correct",
        ],
        0,
    )
    for t, s in zip(res.trajectories, samples):
        text, (ca, cb) = t.model_text(), s.provenance["seen"]
        crops = [p.info.box_orig for p in t.pieces if p.kind == "image" and p.info.role == "crop"]
        on = [k < len(crops) and contains_detail(crops[k], s.details[k]) for k in range(2)]
        c["first_crop_on_detail"] += on[0]
        c["second_crop_on_detail"] += on[1]
        c["both_crops_on_detail"] += on[0] and on[1]
        reads = re.findall(r"(?:It|This one) is (\w+)", text)
        c["correct"] += t.final_answer() in s.answers
        if len(reads) < 2:
            continue
        r1, r2 = reads[0], reads[1]
        c["parsed"] += 1
        c["first_read"] += r1 == ca
        c["second_read"] += r2 == cb
        c["both_reads"] += r1 == ca and r2 == cb
        c["verdict_agrees"] += (t.final_answer() == "yes") == (r1 == r2)
    rec = {"checkpoint": checkpoint, "mode": mode, "n": n, **{k: round(v / n, 3) for k, v in c.items()}}
    json.dump(rec, open(out, "w"), indent=1)
    print(json.dumps(rec))
    return rec


if __name__ == "__main__":
    if sys.argv[1] == "text":
        # [pattern [FIRST_COLOUR_STEPS]]: pattern words, after FIRST_COLOUR_STEPS steps of colour words
        text_probe(
            sys.argv[2],
            int(sys.argv[3]),
            sys.argv[4],
            words=PATTERNS if sys.argv[5:6] == ["pattern"] else COL,
            first=(COL, int(sys.argv[6])) if len(sys.argv) > 6 else (),
        )
    else:
        diag(sys.argv[2], int(sys.argv[3]), sys.argv[4], *(sys.argv[5:6]))
