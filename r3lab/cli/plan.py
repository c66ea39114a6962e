"""`r3lab plan`: GPU memory of a policy for SFT and R-GRPO, and the largest batch and group that fit."""

from __future__ import annotations

import json

from ..train.plan import PlanConfig
from .args import add_dataclass_arguments, dataclass_from_args


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, PlanConfig)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (bytes) instead of a table")


def run(args) -> int:
    from ..train.plan import plan

    result = plan(dataclass_from_args(PlanConfig, args))
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.table())
    return 0
