"""The recipe's SFT check on one process against the same check dealt out over two DDP ranks, side by side in one run.

    python benchmarks/sft_check.py [--n 100] [--policy assets/checkpoints/r3-tiny-sft]

The SFT check (`r3lab.recipe.sft_check.measure`: greedy rollouts with their crops on `n` held-out questions of
read_one, compare_two and control) runs inside the SFT stage, whose two DDP ranks used to wait on rank 0 while it
measured. Here it runs twice on the shipped SFT checkpoint, one thread per process: once in one process, once as two
gloo ranks under torchrun (each rolls out half of the questions, `evaluate_rows`). Prints both wall times, their
ratio and whether the two measurements agree; writes benchmarks/results/sft_check.json. The ratio needs two idle
cores: on a machine shared with other work the two ranks share its cores with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from r3lab.model.policy import load_policy
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.recipe.sft_check import measure
    from r3lab.train import dist

    dist.init()
    c = RecipeConfig()
    policy = load_policy(sys.argv[2], view=c.view_config())
    t0 = time.perf_counter()
    m = measure(policy, c.world_config(), c.eval_config("sft"), int(sys.argv[3]))
    seconds = time.perf_counter() - t0
    if dist.info().is_main:
        json.dump({"seconds": seconds, "check": m, "ranks": dist.info().world_size}, open(sys.argv[1], "w"))
    dist.shutdown()
""")


def _run(launcher: list[str], script: Path, out: Path, policy: str, n: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    res = subprocess.run(launcher + [str(script), str(out), policy, str(n)], env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(res.stdout[-2000:] + res.stderr[-2000:])
    return json.loads(out.read_text())


def one_and_two(worker: str, policy: str, n: int) -> tuple[dict, dict]:
    """`worker` (argv: OUT POLICY N) run by one process, then by two torchrun gloo ranks: the JSON each wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(worker)
        one = _run([sys.executable], script, Path(tmp) / "one.json", policy, n)
        two = _run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
            script,
            Path(tmp) / "two.json",
            policy,
            n,
        )
    return one, two


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="held-out questions per family (the recipe: 300)")
    ap.add_argument("--policy", default=str(ROOT / "assets" / "checkpoints" / "r3-tiny-sft"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sft_check.json"))
    args = ap.parse_args(argv)
    one, two = one_and_two(WORKER, args.policy, args.n)
    out = {
        "n_per_family": args.n,
        "policy": Path(args.policy).name,
        "seconds": {"one_process": round(one["seconds"], 1), "two_ranks": round(two["seconds"], 1)},
        "two_vs_one": round(two["seconds"] / one["seconds"], 3),
        "same_check": one["check"] == two["check"],
        "check_one": one["check"],
        "check_two": two["check"],
        "when": time.strftime("%Y-%m-%d"),
        "config": "one thread per process, greedy, the recipe's SFT-row settings",
    }
    print(json.dumps(out, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
