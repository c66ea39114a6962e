"""`r3lab train sft`: supervised fine-tuning on a VLIR dataset folder."""

from __future__ import annotations

from ..train.config import SFTConfig
from ..train.sft import train
from .args import add_dataclass_arguments
from .inputs import add_necessity_arguments, add_policy_arguments, run_training


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, SFTConfig)
    add_necessity_arguments(parser)


def run(args) -> int:
    return run_training(args, SFTConfig, train, lambda log: f"SFT: {len(log)} log rows, last {log.last}")
