"""Levers on integrated gradients' peak memory at equal time: which recompute or storage choice meets
IG time <= 1.2 x S forward-and-backward passes and peak <= 3 x a forward's (issue 43) on the benchmark's model.

    python research/probes/ig_memory.py [--length 1000] [--out research/results/ig_memory_levers.json]

The unit is one gradient-x-input pass (IG makes S of them, `benchmarks/explain.py` shows IG = 1.0 x S of them),
on benchmarks/explain.py's trajectory and model (text 4 L x 256, intermediate 512; box digits as the target).
Levers, each in a fresh subprocess (CPU seconds over 3 rounds after a warm-up; RSS peak as the benchmark measures it):
  plain      every layer's activations kept for backward
  full       every decoder layer recomputed in backward (`attribute(..., recompute=True)`)
  mlp        only each layer's MLP recomputed (torch.utils.checkpoint around `layer.mlp`)
  bf16       activations saved for backward stored in bfloat16 (saved_tensors_hooks; parameters untouched)
  bf16_mlp   both of the last two
The lossy levers report the attribution's relative error and correlation against plain.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
LEVERS = ("forward", "plain", "full", "mlp", "bf16", "bf16_mlp")


@contextlib.contextmanager
def _mlp_recomputed(model):
    import torch.utils.checkpoint as cp

    mods = [m for n, m in model.named_modules() if n.endswith(".mlp") and ".layers." in n]
    for m in mods:
        m.forward = partial(cp.checkpoint, type(m).forward.__get__(m), use_reentrant=False)
    try:
        yield
    finally:
        for m in mods:
            del m.forward


@contextlib.contextmanager
def _bf16_saved(model):
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        if t.dtype == torch.float32 and t.numel() > 4096 and t.untyped_storage().data_ptr() not in params:
            return t.to(torch.bfloat16), True
        return t, False

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda p: p[0].float() if p[1] else p[0]):
        yield


def worker(lever: str, length: int) -> dict:
    import torch
    from attention import _peak_during
    from explain import _setup

    from r3lab.explain.gradients import attribute

    policy, s, _cf, pos, _mask, _read = _setup(length)
    model = policy.model

    def once(lv=lever):
        if lv == "forward":
            with torch.no_grad():
                return s.score(s.embeds, pos)
        ctx = contextlib.ExitStack()
        if lv.startswith("bf16"):
            ctx.enter_context(_bf16_saved(model))
        if lv.endswith("mlp"):
            ctx.enter_context(_mlp_recomputed(model))
        with ctx:
            return attribute(s, pos, "gradient_x_input", recompute=lv == "full")

    out = {"tokens": s.length}
    if lever.startswith("bf16"):
        ref, got = once("plain"), once()
        out["rel_error"] = round(float((got - ref).norm() / ref.norm()), 5)
        out["corr"] = round(float(torch.corrcoef(torch.stack([got.flatten(), ref.flatten()]))[0, 1]), 6)
    once()
    ts = []
    for _ in range(3):
        t0 = time.process_time()
        once()
        ts.append(time.process_time() - t0)
    _, peak = _peak_during(once)
    return dict(out, cpu_ms=round(min(ts) * 1e3, 1), peak_mb=round(peak / 2**20, 2))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "research" / "results" / "ig_memory_levers.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.length)))
        return {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    raw = {}
    for lv in LEVERS:
        r = subprocess.run(
            [sys.executable, __file__, "--worker", lv, "--length", str(args.length)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        raw[lv] = json.loads(r.stdout.strip().splitlines()[-1])
        print(lv, raw[lv], flush=True)
    fwd, unit = raw["forward"], raw["plain"]
    res = {
        "length": args.length,
        "tokens": fwd["tokens"],
        "raw": raw,
        "levers": {
            lv: dict(
                {
                    "time_vs_fwd_bwd": round(r["cpu_ms"] / unit["cpu_ms"], 3),
                    "peak_vs_forward": round(r["peak_mb"] / fwd["peak_mb"], 3),
                },
                **{k: r[k] for k in ("rel_error", "corr") if k in r},
            )
            for lv, r in raw.items()
            if lv != "forward"
        },
        "targets": {"time_vs_fwd_bwd": 1.2, "peak_vs_forward": 3.0},
        "config": (
            "CPU seconds, 1 thread, fp32; benchmarks/explain.py's model and trajectory; one gradient-x-input pass"
        ),
    }
    res["met_both"] = [
        lv for lv, v in res["levers"].items() if v["time_vs_fwd_bwd"] <= 1.2 and v["peak_vs_forward"] <= 3
    ]
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
