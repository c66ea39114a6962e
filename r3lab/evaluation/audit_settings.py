"""The audit's settings, nested in `EvalConfig` (the audit itself, `r3lab.audit`, sits above evaluation)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.settings import check_bools, check_ranges

MAX_K = 64  # sampled answers per question for majority_no_crop


@dataclass
class AuditSettings:
    """How `r3lab eval --audit` runs its ablations (nested in `EvalConfig` and `BenchConfig`, flags `--audit-*`)."""

    k: int = 5
    """sampled answers without crops whose majority is the majority_no_crop setting (and pass@k)"""
    temperature: float = 1.0
    """their sampling temperature"""
    iou: float = 0.5
    """a written box counts as on the ground-truth region from this IoU (attention vs box)"""
    attention: bool = True
    """attention vs box per crop (one teacher-forced forward per trajectory that cropped)"""

    def __post_init__(self):
        self.validate()

    def validate(self):
        check_ranges(
            self,
            ints=dict(k=(1, MAX_K)),
            floats=dict(temperature=(0.0, 100.0), iou=(0.0, 1.0)),
            open_low=("temperature", "iou"),
            why=dict(
                k="a question's k answers are rolled out as one batch, and pass@k's chance 1 - (1 - "
                "c)^k is near 1 long before",
                temperature="above 100 every token is equally likely",
            ),
        )
        check_bools(self, "attention")
        return self
