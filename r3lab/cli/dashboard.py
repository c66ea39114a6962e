"""`r3lab dashboard LOG_OR_RUN [MORE_EVALS ...] [--out FILE]`: the crop-behaviour dashboard of a training log, of
`r3lab eval` folders (one per checkpoint) or of a set of trajectories (r3lab's own or another system's) as one
self-contained HTML page, with tool necessity where the run measured it; flags a crop collapse."""

from __future__ import annotations

from pathlib import Path

from ..evaluation.behaviour import FORMATS, CollapseConfig
from ..viz.dashboard import DashboardConfig, crop_dashboard, save_dashboard
from .args import add_dataclass_arguments, dataclass_from_args


def add_arguments(parser) -> None:
    parser.add_argument(
        "path",
        nargs="+",
        help="a training folder or log.jsonl (`r3lab train trl`: trl_log.jsonl), an "
        "`r3lab bench` folder, an `r3lab eval` --out folder or several (one point each, at the last "
        "number in the folder's name, e.g. runs/eval/step_000200; tool necessity per family), "
        f"trajectories.jsonl, or another system's run ({', '.join(FORMATS[5:])})",
    )
    add_dataclass_arguments(parser, DashboardConfig)
    add_dataclass_arguments(parser, CollapseConfig)


def run(args) -> int:
    cfg = dataclass_from_args(DashboardConfig, args)
    fig = crop_dashboard(
        args.path,
        dataclass_from_args(CollapseConfig, args),
        format=cfg.format,
        image_root=cfg.image_root or None,
        tokenizer=cfg.tokenizer or None,
    )
    src = Path(args.path[0]) if len(args.path) == 1 else Path(args.path[0]).parent  # several evals: beside them
    out = Path(cfg.out) if cfg.out else (src if src.is_dir() else src.parent) / "dashboard.html"
    save_dashboard(fig, out)
    collapse = fig.layout.meta["collapse"]
    print(collapse.get("message", ""))
    print(f"wrote {out}")
    return 0
