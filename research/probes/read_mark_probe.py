"""read probe: fresh r3-tiny (recipe shape), read the mark's colour from the ground-truth crop; mark size lever."""

import json
import sys

import torch


def main() -> None:
    torch.set_num_threads(1)
    from where_probe import ProbeConfig, probe_where

    from r3lab.core.prompt import TINY_INSTRUCTION
    from r3lab.recipe.recipe import R3_TINY

    mark, steps, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    view = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    cfg = ProbeConfig(
        task="read",
        steps=steps,
        batch_size=16,
        n_eval=200,
        eval_every=200,
        world={"mark_size": mark},
        tiny=dict(R3_TINY),
        view=view,
        prompt={"question_first": True, "instruction": TINY_INSTRUCTION},
        autocast=True,
        out=out,
    )
    rec = probe_where(cfg)
    print(json.dumps(rec["evals"]))


if __name__ == "__main__":
    main()
