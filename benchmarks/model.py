"""r3-tiny's size, a training step's time for a batch of 8 and cached `generate` throughput.

    python benchmarks/model.py [--repeats 10]

Prints a table and writes benchmarks/results/model.json. Times are medians over repeats in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from r3lab.core.batch import collate
from r3lab.core.trajectory import MODEL, Piece
from r3lab.data.sample import Sample
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.testing import tiny_policy, toy_image


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    policy = tiny_policy(fresh=True)
    model = policy.model

    def n(mod):
        return sum(p.numel() for p in mod.parameters())

    size = {"total": n(model), "vision": n(model.model.visual), "text": n(model.model.language_model)}

    sample = Sample(toy_image(), "What colour is the small mark on the red circle?", ["yellow"])
    traj = sample.prompt(policy.view, policy.prompt)
    traj.pieces.append(Piece(MODEL, "<think>The mark is yellow.</think><answer>yellow</answer><|im_end|>"))
    batch = collate([traj] * 8, policy)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    scorer = TokenScorer(model)

    def step():  # what an SFT step does: log-probs at the supervised tokens only, their mean NLL
        mask = batch["loss_mask"]
        loss = -(token_logprobs(scorer, batch) * mask).sum() / mask.sum()
        loss.backward()
        opt.step()
        opt.zero_grad()

    train_ms = _median_ms(step, args.repeats)
    model.eval()
    gen = {}
    for bs in (1, 8):
        prompt = collate([sample.prompt(policy.view, policy.prompt)] * bs, policy, left_pad=True)
        kw = dict(
            input_ids=prompt["input_ids"],
            attention_mask=prompt["attention_mask"],
            pixel_values=prompt["pixel_values"],
            image_grid_thw=prompt["image_grid_thw"],
            mm_token_type_ids=(prompt["input_ids"] == policy.image_token_id).int(),
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
        )
        ms = _median_ms(lambda kw=kw: model.generate(**kw), max(3, args.repeats // 3))
        gen[f"batch{bs}_tok_s"] = bs * args.new_tokens / (ms / 1e3)
    result = {
        "params": size,
        "seq_len": batch["input_ids"].shape[1],
        "train_step_ms_batch8": train_ms,
        **gen,
        "threads": torch.get_num_threads(),
    }
    print(f"r3-tiny parameters: {size['total']:,} (vision {size['vision']:,}, text {size['text']:,})")
    print(f"fwd+bwd+AdamW, batch 8 x {result['seq_len']} tokens: {train_ms:.1f} ms")
    print(
        f"generate (cached, greedy, {args.new_tokens} new tokens): batch 1 {gen['batch1_tok_s']:.0f} tok/s, "
        f"batch 8 {gen['batch8_tok_s']:.0f} tok/s"
    )
    out = Path(__file__).parent / "results" / "model.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
