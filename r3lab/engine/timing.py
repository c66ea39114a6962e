"""The rollout's cost broken down, when asked (`RolloutConfig.timing`): vision encoding of the main images and of
each crop, the prompts' and each crop's prefill, decode steps, sampling, the environment, cache upkeep, host work.

On a GPU a part's wall time means something only after `torch.cuda.synchronize()`, and a synchronisation on
the hot path costs what it measures: so timing is opt-in, and a disabled `Clock` adds no synchronisation.
The vision tower runs inside the forward that prefills its image; forward hooks on it (registered only while
timing) take its time out of that forward's.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import torch

from ..model.adapters import base_model

# environment: the crop environment's rules, cutting crops, image preprocessing; crop_prefill: steps that insert a
# crop or a note (their one-token rows too); cache_upkeep: dropping rows, squeezing holes, growing buffers
PARTS = (
    "vision_main",
    "prefill_main",
    "vision_crops",
    "crop_prefill",
    "decode",
    "sampling",
    "environment",
    "cache_upkeep",
    "capture",
)
_OFF = contextlib.nullcontext()


class Clock:
    """Seconds per part of a rollout; `part(name)` is a no-op context when disabled."""

    def __init__(self, device: torch.device, enabled: bool):
        self.enabled, self.cuda = enabled, device.type == "cuda"
        self.totals: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)  # blocks timed per part (decode: the decode steps)
        self.crops: list[dict] = []  # one record per step that inserted crops: rows, vision and prefill seconds
        self._stack: list[dict] = []  # the open parts, innermost last
        self._v0 = None
        self._handles = []
        self.t0 = time.perf_counter()

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def part(self, name: str, vision: str | None = None, crops: int = 0):
        """Time a block as `name` (less the parts nested in it); the vision tower's share inside it goes to
        `vision`; a step that inserts `crops` > 0 crops is also recorded in `crops`."""
        return self._part(name, vision, crops) if self.enabled else _OFF

    @contextlib.contextmanager
    def _part(self, name, vision, crops):
        self._sync()
        frame = {"inner": 0.0, "vision": 0.0}  # seconds of parts nested in this one, of the vision tower in it
        self._stack.append(frame)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            dt = time.perf_counter() - t0
            self._stack.pop()
            v = frame["vision"] if vision else 0.0
            self.totals[name] += dt - frame["inner"] - v
            self.counts[name] += 1
            if vision:
                self.totals[vision] += v
            if crops:
                self.crops.append({"crops": crops, "vision_s": v, "prefill_s": dt - frame["inner"] - v})
            if self._stack:
                self._stack[-1]["inner"] += dt

    def watch_vision(self, model) -> None:
        """Forward hooks on the vision tower (Qwen's `visual`, its merger inside; Idefics3's encoder and connector)."""
        if not self.enabled:
            return
        inner = base_model(model).model
        first = getattr(inner, "visual", None) or getattr(inner, "vision_model", None)
        last = getattr(inner, "connector", None) or first
        if first is None:
            return

        def start(*_):
            self._sync()
            self._v0 = time.perf_counter()

        def stop(*_):
            self._sync()
            if self._v0 is not None and self._stack:
                self._stack[-1]["vision"] += time.perf_counter() - self._v0
            self._v0 = None

        start.r3lab_timing = stop.r3lab_timing = True  # the static cache's fingerprint leaves them out
        self._handles = [first.register_forward_pre_hook(start), last.register_forward_hook(stop)]

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def report(self) -> dict:
        """Seconds per part, `host` (the rest of the wall time: bookkeeping between the parts), `total`, the blocks
        timed per part (`counts`) and a record per step that inserted crops (`crops`)."""
        self._sync()
        total = time.perf_counter() - self.t0
        out = {f"{k}_s": round(self.totals.get(k, 0.0), 6) for k in PARTS}
        out["host_s"] = round(max(0.0, total - sum(self.totals.values())), 6)
        out["total_s"] = round(total, 6)
        out["counts"] = dict(self.counts)
        out["crops"] = [{k: round(v, 6) if isinstance(v, float) else v for k, v in c.items()} for c in self.crops]
        return out
