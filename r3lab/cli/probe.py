"""`r3lab probe where --policy PATH`: where a checkpoint's greedy boxes land for held-out "Where is ...?" questions."""

from __future__ import annotations

from ..model.policy import load_policy
from ..recipe.ground_check import WhereConfig, evaluate_where
from .args import add_dataclass_arguments, dataclass_from_args

NAMES = {
    "mean_iou": "mean IoU with the named landmark's region",
    "iou>0.5": "% IoU > 0.5",
    "centre_on_named": "% box centres on the named landmark",
    "centre_on_any": "% box centres on any landmark",
    "contains_detail": "% boxes containing the detail",
    "valid": "% valid crop calls",
    "random_landmark_iou": "chance: IoU of a random landmark's box",
    "random_landmark_centre": "chance: % centres on named (random landmark)",
}


def add_arguments(parser) -> None:
    parser.add_argument("--policy", required=True, help="checkpoint folder to measure")
    add_dataclass_arguments(parser, WhereConfig)


def format_where(m: dict) -> str:
    """One line per metric of `where_metrics` / `chance`, percentages as such."""
    return "\n".join(f"{NAMES.get(k, k):48s} {v}" for k, v in m.items() if k in NAMES)


def run(args) -> int:
    cfg = dataclass_from_args(WhereConfig, args)
    policy = load_policy(args.policy)
    print(f"{args.policy}: {cfg.n} held-out 'Where is the ...?' questions (seed {cfg.seed})")
    print(format_where(evaluate_where(policy, cfg, progress=None)))
    return 0
