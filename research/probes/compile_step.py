"""Does torch.compile make r3-tiny's training steps cheaper on this CPU? (research/FINDINGS.md: where the time goes)

    python compile_step.py KIND MODE STEPS    # KIND: ground | compare | sft; MODE: eager | static | regional | dynamic

One process, one thread, the recipe's step (16 rows, two micro-batches of similar length, CPU autocast) as
benchmarks/train_step.py builds it. MODE: eager (as the recipe runs), static (the whole language-and-vision model
compiled), regional (each decoder and vision block compiled) or dynamic (regional with dynamic shapes). Prints the
wall time of the first two steps (compilation) and the CPU seconds per step after them.
"""

import os
import sys
import time
from dataclasses import replace

import torch


def main() -> None:
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    import train_step as tb

    import r3lab.train.sft as sft
    from r3lab.core.prompt import PromptConfig
    from r3lab.model.tiny import build_tiny
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train.loop import prepare

    kind = sys.argv[1]
    mode = sys.argv[2]
    steps = int(sys.argv[3])
    c = RecipeConfig(out="/tmp/r3lab-bench-compile")
    policy = build_tiny(
        c.tiny_config(), view=c.view_config(), prompt=PromptConfig(question_first=True, instruction=c.instruction)
    )
    data = tb._data(kind, c, policy.view, 16 * (steps + 3))
    cfg = replace(
        c.sft_config("bench", 10**6, 16, c.phase("ground").lr), out_dir="", resume=False, save_every=0, grad_accum=2
    )
    state = prepare(policy, cfg)
    if mode != "eager":
        m = policy.model.model
        if mode == "static":
            m.compile()
        else:
            for blk in list(m.language_model.layers) + list(m.visual.blocks):
                blk.compile(dynamic=(mode == "dynamic"))
    t0 = time.time()
    p0 = time.process_time()
    sft.sft_step(state, data)
    sft.sft_step(state, data)
    print(kind, mode, "first two steps wall", round(time.time() - t0, 1), flush=True)
    p0 = time.process_time()
    t0 = time.time()
    for _ in range(steps):
        sft.sft_step(state, data)
    print(
        kind,
        mode,
        "cpu s/step",
        round((time.process_time() - p0) / steps, 3),
        "wall s/step",
        round((time.time() - t0) / steps, 3),
        flush=True,
    )


if __name__ == "__main__":
    main()
