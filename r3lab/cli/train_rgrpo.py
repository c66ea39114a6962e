"""`r3lab train rgrpo`: R-GRPO on a VLIR dataset folder (whole GRPO groups per process under torchrun)."""

from __future__ import annotations

from ..train.config import RGRPOConfig
from ..train.rgrpo import train
from .args import add_dataclass_arguments
from .inputs import add_necessity_arguments, add_policy_arguments, run_training


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, RGRPOConfig)
    add_necessity_arguments(parser)


def _summary(log) -> str:
    last = {k: round(v, 4) if isinstance(v, float) else v for k, v in log.last.items()}
    return f"R-GRPO: {len(log)} steps logged; last: {last}"


def run(args) -> int:
    return run_training(args, RGRPOConfig, train, _summary)
