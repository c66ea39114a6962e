"""`RolloutConfig`: sampling, limits and engine settings of a rollout (no torch: the CLI reads it)."""
from __future__ import annotations

import math

from dataclasses import dataclass


@dataclass
class RolloutConfig:
    """Sampling, limits and engine settings of `rollout`."""

    group_size: int = 4  # G copies of each sample, contiguous in the output (GRPO groups)
    max_crops: int = 3  # crop calls honoured per trajectory; later valid calls get an env note
    max_images: int = 8  # images per trajectory including the main one; a call past it ends the rollout
    max_new_tokens: int = 128  # model tokens per trajectory, all segments together
    max_segment_tokens: int = 96  # model tokens per segment (between two images / notes)
    temperature: float = 1.0  # 0 or greedy=True -> argmax
    top_p: float = 1.0  # nucleus sampling mass (1.0 = off); log-probs are recorded before it
    greedy: bool = False  # argmax decoding (log-probs then use T = 1)
    mode: str = "batched"  # "batched" (KV reuse, one batch) | "reference" (official loop: one at a time, re-prefill)
    batch_rows: int = 64  # max rows decoded together (samples*G are chunked by whole groups)
    seed: int | None = None  # torch.Generator seed for sampling (None: drawn from torch's global RNG)
    compact_holes: float = 0.5  # squeeze the cache when this fraction of its slots are holes (1.0 = never)
    drop_finished: bool = True  # finished rows leave the batch (False: they ride along as pads, like generate())

    def __post_init__(self):
        if self.mode not in ("batched", "reference"):
            raise ValueError(f"mode must be 'batched' or 'reference', got {self.mode!r}")
        for name in ("group_size", "max_images", "max_new_tokens", "max_segment_tokens", "batch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_crops < 0:
            raise ValueError(f"max_crops must be >= 0, got {self.max_crops}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)) or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")

    @property
    def effective_temperature(self) -> float:
        return 0.0 if self.greedy else float(self.temperature)
