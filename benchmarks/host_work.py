"""Host work per rollout step, measured on this CPU: host <-> device transfers per step and host milliseconds per step.

    python benchmarks/host_work.py [--rows 8 64] [--tokens 48] [--out FILE]

On a GPU every millisecond the host spends between two decode steps is a millisecond the GPU waits (the loop waits
for each step's tokens), and every transfer is a copy the step waits for. Neither needs a GPU to be counted:

  transfers   every call that moves data between host and device on CUDA, counted where the engine makes it,
              whatever the device: `.tolist()`, `.item()`, `.cpu()`, `bool()` / `int()` / `float()` of a tensor,
              `.to(<device>)`, `torch.tensor(..., device=...)` / `torch.as_tensor(..., device=...)`. Counted per
              step and split by kind: a decode step (every row appends one token), a step where rows finish, a
              crop step. `syncs`: those of them that wait for the device (all but the non-blocking copies to it).
  host ms     a step's wall time less the time inside the model's forward (on a GPU: the replay), per step.

The counting wraps torch's own methods, so it measures any version of the engine alike (the numbers before and
after a change come from this one script). tests/engine/test_host_copies.py holds the counts; rollout.py reports
the host time beside the decode time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's r3lab, whichever one is installed

_METHODS = ("tolist", "item", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


class Transfers:
    """Counts transfer calls (see the module docstring) while active; `boundary(kind)` closes one step."""

    def __init__(self):
        self.now = defaultdict(int)  # calls since the last boundary: name -> count
        self.steps: list[tuple[str, dict]] = []
        self._t, self._c = time.perf_counter(), time.process_time()
        self.step_s: list[float] = []
        self.step_cpu: list[float] = []

    def hit(self, name: str) -> None:
        self.now[name] += 1

    def boundary(self, kind: str, forward_s: float, forward_cpu: float) -> None:
        t, c = time.perf_counter(), time.process_time()
        self.steps.append((kind, dict(self.now)))
        self.step_s.append(t - self._t - forward_s)
        self.step_cpu.append(c - self._c - forward_cpu)
        self.now.clear()
        self._t, self._c = t, c

    def summary(self) -> dict:
        out = {}
        for kind in sorted({k for k, _ in self.steps}):
            rows = [(c, s) for (k, c), s in zip(self.steps, self.step_s) if k == kind]
            cpu = [s for (k, _), s in zip(self.steps, self.step_cpu) if k == kind]
            n = len(rows)
            total = sum(sum(c.values()) for c, _ in rows)
            syncs = sum(v for c, _ in rows for name, v in c.items() if name != "to_async")
            names = defaultdict(int)
            for c, _ in rows:
                for name, v in c.items():
                    names[name] += v
            out[kind] = {
                "steps": n,
                "transfers_per_step": round(total / n, 3),
                "syncs_per_step": round(syncs / n, 3),
                "max_transfers": max(sum(c.values()) for c, _ in rows),
                "host_ms_per_step": round(1e3 * sum(s for _, s in rows) / n, 4),
                "host_cpu_ms_per_step": round(1e3 * sum(cpu) / n, 4),
                "by_call": dict(names),
            }
        return out


@contextlib.contextmanager
def counting(policy):
    """Count transfers and the model's forward time, step by step, inside this block (see `Transfers`)."""
    from r3lab.engine import rollouts

    rec = Transfers()
    active = [False]
    saved = {}
    # the model's forward: its wall and CPU time, and calls inside it not counted
    fwd = {"s": 0.0, "c": 0.0, "t0": 0.0, "c0": 0.0, "depth": 0}

    def wrap(owner, name, label, test=None):
        fn = getattr(owner, name)
        saved[(owner, name)] = fn

        def counted(*a, **kw):
            if active[0] and not fwd["depth"] and (test is None or test(*a, **kw)):
                rec.hit(label(*a, **kw) if callable(label) else label)
            return fn(*a, **kw)

        setattr(owner, name, counted)

    def names_device(*a, **kw):
        return "device" in kw or any(isinstance(x, (torch.device, str)) or torch.is_tensor(x) for x in a[1:])

    def to_label(*a, **kw):
        return "to_async" if kw.get("non_blocking") else "to"

    for m in _METHODS:
        wrap(torch.Tensor, m, m)
    wrap(torch.Tensor, "to", to_label, names_device)
    wrap(torch, "tensor", "tensor", lambda *a, **kw: kw.get("device") is not None)
    wrap(torch, "as_tensor", "as_tensor", lambda *a, **kw: kw.get("device") is not None)

    def pre(*_):
        if fwd["depth"] == 0:
            fwd["t0"], fwd["c0"] = time.perf_counter(), time.process_time()
        fwd["depth"] += 1

    def post(*_):
        fwd["depth"] -= 1
        if fwd["depth"] == 0:
            fwd["s"] += time.perf_counter() - fwd["t0"]
            fwd["c"] += time.process_time() - fwd["c0"]

    pre.r3lab_timing = post.r3lab_timing = True  # the static cache's fingerprint leaves them out
    hooks = [policy.model.register_forward_pre_hook(pre), policy.model.register_forward_hook(post)]
    append = rollouts._Engine._append

    def timed_append(self, sc, feeds, *a, **kw):
        was = active[0]
        active[0] = True
        out = append(self, sc, feeds, *a, **kw)
        wide = any(f is not None and len(f.ids) > 1 for f in feeds)
        kind = "crop" if wide else ("finish" if self.__dict__.pop("_h87_dropped", False) else "decode")
        if not rec.steps:  # the prompts' prefill and what the rollout sets up land in its first step
            kind = "first"
        rec.boundary(kind, fwd["s"], fwd["c"])
        fwd["s"] = fwd["c"] = 0.0
        active[0] = was
        return out

    try:
        rollouts._Engine._append = timed_append
        _mark_finishing(rollouts, saved)
        active[0] = False
        yield rec, active
    finally:
        rollouts._Engine._append = append
        for (owner, name), fn in saved.items():
            setattr(owner, name, fn)
        for h in hooks:
            h.remove()


def _mark_finishing(rollouts, saved) -> None:
    """A step in which rows left the batch is counted apart (it moves rows: one index goes to the device)."""
    eng = rollouts._Engine
    fn = eng._choose
    saved[(eng, "_choose")] = fn

    def choose(self, rows, logits, *a, **kw):
        out = fn(self, rows, logits, *a, **kw)
        feeds = out[0] if isinstance(out, tuple) else out  # (feeds, ids on the device) or, before them, feeds
        if any(f is None for f in feeds):
            self._h87_dropped = True
        return out

    eng._choose = choose


def measure(policy, samples, cfg, scripts, group_size: int, repeats: int = 2) -> dict:
    """Transfers and host ms per step of one rollout (the best host time of `repeats`, after a warm-up)."""
    from r3lab.engine.rollouts import rollout

    rollout(policy, samples, cfg, group_size=group_size, scripts=scripts, progress=False)
    best = None
    for _ in range(repeats):
        with counting(policy) as (rec, active):
            active[0] = True
            t0 = time.perf_counter()
            rollout(policy, samples, cfg, group_size=group_size, scripts=scripts, progress=False)
            wall = time.perf_counter() - t0
        s = rec.summary()
        s["wall_s"] = round(wall, 4)
        if best is None or s.get("decode", {}).get("host_cpu_ms_per_step", 0) < best.get("decode", {}).get(
            "host_cpu_ms_per_step", 0
        ):
            best = s
    return best


def main(argv=None) -> dict:
    from r3lab.data.sample import Sample
    from r3lab.engine.config import RolloutConfig
    from r3lab.model.tiny import TinyConfig, build_tiny
    from r3lab.testing import toy_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "host_work.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    policy = build_tiny(TinyConfig(seed=3))
    sample = Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0")
    res = {"torch": torch.__version__, "rows": {}}
    for rows in args.rows:
        for cache in ("static", "dynamic"):
            for label, script, temp in (("scripted", [" a" * (args.tokens + 8)], 0.0), ("sampled", None, 1.0)):
                cfg = RolloutConfig(
                    max_crops=0,
                    max_new_tokens=args.tokens,
                    max_segment_tokens=args.tokens,
                    seed=0,
                    temperature=temp,
                    greedy=temp == 0,
                    cache=cache,
                )
                r = measure(policy, [sample], cfg, script, rows, args.repeats)
                res["rows"][f"{cache}/{label}/b{rows}"] = r
                d = r.get("decode", {})
                print(
                    f"{cache:8s} {label:9s} b{rows:<3d} decode steps {d.get('steps', 0):3d}: transfers/step "
                    f"{d.get('transfers_per_step')} (syncs {d.get('syncs_per_step')}), host ms/step "
                    f"{d.get('host_ms_per_step')} (CPU {d.get('host_cpu_ms_per_step')}); finishing steps: "
                    f"{r.get('finish', {}).get('transfers_per_step')}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
