"""Cost per correct answer (the 2026 audits' "did the tool pay?"): model tokens, crops, vision-encoder seconds and wall
seconds of a setting's rollouts, each divided by the answers it got right, per family.

Rollouts are run family by family (`by_family`), so the seconds of a batch belong to one family exactly; the
vision tower's seconds are timed by hooks around its forward (`VisionClock`: CUDA synchronised on a GPU). Keys per
setting `s`: `tokens_per_correct_<s>`, `crops_per_correct_<s>` (accepted crop calls and crops given up front),
`vision_s_per_correct_<s>`, `wall_s_per_correct_<s>`; NaN where the setting answered nothing right.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from ..core.trajectory import IMAGE, MODEL
from ..model.adapters import base_model

if TYPE_CHECKING:
    from ..model.policy import Policy

PARTS = ("tokens", "crops", "vision_s", "wall_s")


def vision_tower(model) -> torch.nn.Module | None:
    """The vision encoder of a transformers VLM (Qwen's `visual`, Idefics3's `vision_model`), or None."""
    inner = getattr(base_model(model), "model", None)
    return next((getattr(inner, n) for n in ("visual", "vision_model", "vision_tower") if hasattr(inner, n)), None)


class VisionClock:
    """Seconds spent inside the vision tower's forward while the context is open (NaN: no tower found)."""

    def __init__(self, policy: "Policy"):
        self.tower = vision_tower(policy.model)
        self.cuda = policy.device.type == "cuda" if hasattr(policy.device, "type") else False
        self.seconds = 0.0 if self.tower is not None else math.nan
        self._t0, self._hooks = None, []

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def _pre(self, *_):
        self._sync()
        self._t0 = time.perf_counter()

    def _post(self, *_):
        self._sync()
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self._t0 = None

    def __enter__(self) -> "VisionClock":
        if self.tower is not None:
            self._hooks = [
                self.tower.register_forward_pre_hook(self._pre),
                self.tower.register_forward_hook(self._post),
            ]
        return self

    def __exit__(self, *exc):
        for h in self._hooks:
            h.remove()
        self._hooks = []


def by_family(policy: "Policy", groups: Sequence[str], run: Callable[[list[int]], list]) -> tuple[list, list[dict]]:
    """`run(indices)` over each group's samples in turn (groups in order of first appearance), its outputs put
    back in the samples' order, and per sample {"wall_s", "vision_s"}: its group's seconds shared evenly, so that
    a group's sum is exactly the seconds its rollouts took."""
    order: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    out: list = [None] * len(groups)
    seconds: list[dict] = [{} for _ in groups]
    for idx in order.values():
        with VisionClock(policy) as clock:
            t0 = time.perf_counter()
            got = run(idx)
            wall = time.perf_counter() - t0
        if len(got) != len(idx):
            raise ValueError(f"by_family: run returned {len(got)} outputs for {len(idx)} samples")
        for i, g in zip(idx, got):
            out[i] = g
            seconds[i] = {"wall_s": wall / len(idx), "vision_s": clock.seconds / len(idx)}
    return out, seconds


def spent(trajectories) -> dict[str, float]:
    """Model tokens and crops of one sample's trajectories (one, or the k of a majority vote); a dict of the two
    (a benchmark item's record) is taken as it is."""
    if isinstance(trajectories, dict):
        return {"tokens": float(trajectories["tokens"]), "crops": float(trajectories["crops"])}
    trajs = trajectories if isinstance(trajectories, (list, tuple)) else [trajectories]
    tokens = sum(len(p.ids or []) for t in trajs for p in t.pieces if p.kind == MODEL)
    crops = sum(
        sum(e.ok for e in t.events) + sum(p.kind == IMAGE and p.info.role == "given" for p in t.pieces) for t in trajs
    )
    return {"tokens": float(tokens), "crops": float(crops)}


def cost_rows(
    setting: str, groups: Sequence[str], per_sample: Sequence, hits: Sequence, seconds: Sequence[dict] | None = None
) -> dict[str, dict]:
    """The four cost keys of `setting` per group (and "all"): totals over the group's samples (`spent` of each
    entry of `per_sample`, None: not run; `seconds` per sample, from `by_family`; None: not timed, NaN) divided by
    its correct answers (`hits` >= 0.5)."""
    n = len(groups)
    if len(per_sample) != n or len(hits) != n or (seconds is not None and len(seconds) != n):
        raise ValueError(f"cost_rows needs one entry per sample ({n}) in per_sample, hits and seconds")
    spent_ = [spent(t) if t is not None else None for t in per_sample]
    rows = {}
    for fam in sorted(set(groups)) + ["all"]:
        idx = [i for i, g in enumerate(groups) if (fam == "all" or g == fam) and spent_[i] is not None]
        right = sum(hits[i] is not None and hits[i] >= 0.5 for i in idx)
        total = {p: sum(spent_[i][p] for i in idx) for p in ("tokens", "crops")}
        for p in ("vision_s", "wall_s"):
            total[p] = sum(seconds[i].get(p, math.nan) for i in idx) if seconds is not None else math.nan
        rows[fam] = {f"{p}_per_correct_{setting}": total[p] / right if right else math.nan for p in PARTS}
    return rows
