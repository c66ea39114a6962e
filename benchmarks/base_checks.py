"""The base stage's four checks on one process against the same checks dealt out over two DDP ranks, side by side.

    python benchmarks/base_checks.py [--n 200] [--policy assets/checkpoints/r3-tiny-base]

The recipe's base stage measures after its phases (`r3lab.recipe`: `read_check.read_accuracy`,
`drill_check.text_verdict`, `compare_check.measure` with the grounding, `ground_check.measure`), `n` held-out
questions each, while both DDP ranks wait for the result; each check deals its questions out over the ranks in its
own batches (`r3lab.train.dist.deal`), so two ranks measure what one process measures. Here the four run on the
shipped base checkpoint, one thread per process: once in one process, once as two gloo ranks under torchrun.
Prints each check's wall times, their ratio and whether the two measurements agree; writes
benchmarks/results/base_checks.json. The ratio needs two idle cores.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

from sft_check import ROOT, one_and_two

WORKER = textwrap.dedent("""
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from r3lab.model.policy import load_policy
    from r3lab.recipe import compare_check, drill_check, ground_check, read_check
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.train import dist

    dist.init()
    c, n = RecipeConfig(), int(sys.argv[3])
    policy = load_policy(sys.argv[2], view=c.view_config())
    ground_world = {**c.world, **c.base_world}
    checks = {"read": lambda: read_check.read_accuracy(policy, c.world_config(), n),
              "drill": lambda: drill_check.text_verdict(policy, c.world_config(), n, reads=c.phase("drill").mix.reads),
              "compare": lambda: compare_check.measure(policy, c.world_config(), n, ground_world),
              "ground": lambda: ground_check.measure(policy, ground_world, n)}
    out = {}
    for name, fn in checks.items():
        t0 = time.perf_counter()
        m = fn()
        out[name] = {"seconds": time.perf_counter() - t0, "check": m}
    if dist.info().is_main:
        json.dump({"checks": out, "ranks": dist.info().world_size}, open(sys.argv[1], "w"))
    dist.shutdown()
""")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="held-out questions per check (the recipe: 200)")
    ap.add_argument("--policy", default=str(ROOT / "assets" / "checkpoints" / "r3-tiny-base"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "base_checks.json"))
    args = ap.parse_args(argv)
    one, two = (r["checks"] for r in one_and_two(WORKER, args.policy, args.n))
    rows = {
        name: {
            "one_process_s": round(one[name]["seconds"], 1),
            "two_ranks_s": round(two[name]["seconds"], 1),
            "two_vs_one": round(two[name]["seconds"] / one[name]["seconds"], 3),
            "same_check": one[name]["check"] == two[name]["check"],
            "check": one[name]["check"],
        }
        for name in one
    }
    total = {k: round(sum(r[k] for r in rows.values()), 1) for k in ("one_process_s", "two_ranks_s")}
    out = {
        "n": args.n,
        "policy": Path(args.policy).name,
        "checks": rows,
        "total": total,
        "two_vs_one": round(total["two_ranks_s"] / total["one_process_s"], 3),
        "when": time.strftime("%Y-%m-%d"),
        "config": "one thread per process, the recipe's check settings",
    }
    print(json.dumps(out, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
