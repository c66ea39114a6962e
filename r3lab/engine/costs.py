"""What KV reuse buys: the engine and the official re-prefill loop timed side by side in one run.

`compare` runs rollout variants round-robin (best of N each), so a change in a shared machine's load
hits them alike; `reprefill_curve` times one scripted trajectory with 1, 2, ... crops in both modes
(`benchmarks/rollout.py` and notebook 10 draw their curves from it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from ..core.regions import Frame
from .config import RolloutConfig
from .environment import crop_script
from .rollouts import rollout

if TYPE_CHECKING:
    from ..data.sample import Sample
    from ..model.policy import Policy


def compare(policy: "Policy", samples, variants: dict, repeats: int, **kw) -> dict:
    """Run the variants (name -> RolloutConfig) round-robin, `repeats` times each, so that a change in
    the machine's load hits all of them alike. Returns name -> (best seconds, trajectories, work counters)."""
    best = {name: (float("inf"), None, {}) for name in variants}
    for _ in range(repeats):
        for name, cfg in variants.items():
            stats = {}
            t0 = time.perf_counter()
            out = rollout(policy, samples, cfg, progress=False, stats=stats, **kw)
            dt = time.perf_counter() - t0
            if dt < best[name][0]:
                best[name] = (dt, out, {k: v for k, v in stats.items() if k != "seconds"})
    return best


def warm_up(policy: "Policy", sample: "Sample") -> None:
    """First calls pay for lazy initialisation; keep that out of every timing."""
    for mode in ("batched", "reference"):
        rollout(policy, [sample], RolloutConfig(max_new_tokens=8, mode=mode, seed=0), group_size=2, progress=False)


def model_tokens(trajs) -> int:
    return sum(len(p.ids) for t in trajs for p in t.pieces if p.kind == "model_text")


def reprefill_curve(
    policy: "Policy", sample: "Sample", crops: Iterable[int], repeats: int = 3, segment: str = " I look closer."
) -> list[dict]:
    """One scripted trajectory per crop count, with KV reuse (`mode="batched"`) and re-prefilled after every
    crop (`mode="reference"`); both write the same tokens (checked). One row per crop count."""
    frame = Frame.of(sample.load_image().size, policy.view)
    warm_up(policy, sample)
    rows = []
    for n in crops:
        base = RolloutConfig(greedy=True, max_crops=n, max_images=n + 1, max_new_tokens=4096, max_segment_tokens=512)
        r = compare(
            policy,
            [sample],
            {"reuse": base, "full": replace(base, mode="reference")},
            repeats,
            group_size=1,
            scripts=[crop_script(frame, n, segment, style=policy.prompt.calls)],
        )
        (t_reuse, a, wa), (t_full, b, wb) = r["reuse"], r["full"]
        if a[0].input_ids() != b[0].input_ids() or a[0].meta["n_crops"] != n:
            raise RuntimeError(f"the two modes disagree at {frame.input_w} px, {n} crops")
        tok = model_tokens(a)
        rows.append(
            {
                "px": frame.input_w,
                "crops": n,
                "context_tokens": len(a[0].input_ids()),
                "model_tokens": tok,
                "reuse_s": round(t_reuse, 4),
                "reprefill_s": round(t_full, 4),
                "speedup": round(t_full / t_reuse, 2),
                "reuse_tok_s": round(tok / t_reuse, 1),
                "reprefill_tok_s": round(tok / t_full, 1),
                "reuse_text_slots": wa["slots"],
                "reprefill_text_slots": wb["slots"],
            }
        )
    return rows
