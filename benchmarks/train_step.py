"""The recipe's SFT step as it runs now against plain bfloat16 autocast with one padded micro-batch, side by side.

    python benchmarks/train_step.py [--rows 16] [--steps 6] [--rounds 3]

One process of the recipe's base and SFT stages (its share of a 32-sample step: 16 rows) on r3-tiny as the recipe
builds it, for each kind of step the recipe takes: grounding questions (short rows of one length), the read and
comparison phases' mix (close-ups, comparisons with both crops, grounding and control questions: lengths 129-401)
and VLIR SFT samples (the recipe's family mix). Two ways, alternated over `--rounds` rounds on the same model:
  before  torch.autocast(bfloat16) around the forward, the step's rows in one padded batch
  conv    r3lab.train.precision.autocast (attention in float32 on a CPU), two micro-batches of rows of similar
          length (`by_length`; SFTConfig.grad_accum=2, as the recipe sets it), the vision tower's stock Conv3d
          patch embedding
  now     the same with the patch embedding as a matrix product (r3lab.model.patch_linear, as every Policy has it)
Time: CPU seconds of this process per step (`time.process_time`), the best round. Writes
benchmarks/results/train_step.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

import r3lab.train.sft as sft
from r3lab.core.prompt import PromptConfig
from r3lab.data.grounding import build_base
from r3lab.data.vlir import build_samples
from r3lab.model.patch_linear import PatchConv3d
from r3lab.model.tiny import build_tiny
from r3lab.recipe.recipe_config import RecipeConfig
from r3lab.train.loop import prepare


def _plain_autocast(device, enabled=True):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def _data(kind: str, c: RecipeConfig, view, n: int) -> list:
    if kind == "ground":
        return build_base(n, c.data_seed, 0.0, c.world_config(base=True), view=view, pairs=0.0, progress=False)
    if kind == "compare":
        mix = c.phase("compare").mix  # the comparison phase's mix, with the read phase's share of close-ups
        return build_base(
            n,
            c.data_seed + 2,
            c.phase("read").mix.closeups,
            c.world_config(),
            view=view,
            comparisons=mix.comparisons,
            comparison_crops=True,
            closeup_style=mix.style,
            controls=mix.controls,
            progress=False,
        )
    return build_samples(
        n,
        c.data_seed,
        c.family_list,
        c.world_config(),
        view=view,
        weights=c.phase("sft_read").mix.family_weights(c.family_list),
        progress=False,
    )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=16, help="rows per process and step (the recipe: 32 over 2 ranks)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per round and way")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", nargs="+", default=["ground", "compare", "sft"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_step.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    c = RecipeConfig(out="/tmp/r3lab-bench-train-step")
    policy = build_tiny(
        c.tiny_config(), view=c.view_config(), prompt=PromptConfig(question_first=True, instruction=c.instruction)
    )
    ways = {"before": (1, _plain_autocast, False), "conv": (2, sft.autocast, False), "now": (2, sft.autocast, True)}
    results = {}
    for kind in args.kinds:
        data = _data(kind, c, policy.view, args.rows * (args.steps + 1) * len(ways) * args.rounds)
        lengths = sorted(len(s.reference(policy.view, policy.prompt).tokenize(policy).input_ids()) for s in data[:64])
        times = {w: [] for w in ways}
        for _ in range(args.rounds):
            for way, (accum, cast, linear) in ways.items():
                cfg = replace(
                    c.sft_config("bench", 10**6, args.rows, c.phase("ground").lr),
                    out_dir="",
                    resume=False,
                    save_every=0,
                    grad_accum=accum,
                )
                state = prepare(policy, cfg)
                with _swapped(cast), _patch_embed(policy, linear):
                    sft.sft_step(state, data)  # warm-up
                    t0 = time.process_time()
                    for _ in range(args.steps):
                        sft.sft_step(state, data)
                    times[way].append((time.process_time() - t0) / args.steps)
        best = {w: min(v) for w, v in times.items()}
        results[kind] = {
            "s_per_step": {w: round(v, 3) for w, v in best.items()},
            "rounds": {w: [round(x, 3) for x in v] for w, v in times.items()},
            "now_vs_before": round(best["now"] / best["before"], 3),
            "now_vs_conv": round(best["now"] / best["conv"], 3),
            "row_lengths": [lengths[0], lengths[len(lengths) // 2], lengths[-1]],
        }
        print(kind, json.dumps(results[kind]), flush=True)
    out = {
        "results": results,
        "config": f"r3-tiny as the recipe builds it ({c.tiny}); {args.rows} rows a step, one "
        f"process, {torch.get_num_threads()} thread(s), CPU seconds, "
        f"best of {args.rounds} rounds of {args.steps} steps",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


@contextlib.contextmanager
def _patch_embed(policy, linear: bool):
    """The patch embedding as a matrix product (`linear`) or as transformers' Conv3d while the block runs."""
    proj = policy.model.model.visual.patch_embed.proj
    before = type(proj)
    proj.__class__ = PatchConv3d if linear else torch.nn.Conv3d
    try:
        yield
    finally:
        proj.__class__ = before


@contextlib.contextmanager
def _swapped(cast):
    """sft_step's autocast replaced by `cast` while the block runs."""
    before = sft.autocast
    sft.autocast = cast
    try:
        yield
    finally:
        sft.autocast = before


if __name__ == "__main__":
    main()
