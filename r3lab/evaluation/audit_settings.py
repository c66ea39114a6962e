"""The audit's settings, nested in `EvalConfig` (the audit itself, `r3lab.audit`, sits above evaluation)."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.settings import POSITIVE, check_ranges


@dataclass
class AuditSettings:
    """How `r3lab eval --audit` runs its ablations (nested in `EvalConfig` and `BenchConfig`, flags `--audit-*`)."""

    k: int = 5  # sampled answers without crops whose majority is the majority_no_crop setting (and pass@k)
    temperature: float = 1.0  # their sampling temperature
    iou: float = 0.5  # a written box counts as on the ground-truth region from this IoU (attention vs box)
    attention: bool = True  # attention vs box per crop (one teacher-forced forward per trajectory that cropped)

    def __post_init__(self):
        self.validate()

    def validate(self):
        check_ranges(self, ints=dict(k=POSITIVE), floats=dict(temperature=(0.0, None), iou=(0.0, 1.0)),
                     open_low=("temperature", "iou"))
        return self
