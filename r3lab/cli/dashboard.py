"""`r3lab dashboard LOG_OR_RUN [--out FILE]`: the crop-behaviour dashboard of a training log or a set of
trajectories (r3lab's own or another system's) as one self-contained HTML page; flags a crop collapse."""
from __future__ import annotations

from pathlib import Path

from ..replication.behaviour import FORMATS, CollapseConfig
from ..viz.dashboard import DashboardConfig, crop_dashboard, save_dashboard
from .args import add_dataclass_arguments, dataclass_from_args


def add_arguments(parser) -> None:
    parser.add_argument("path", help="a training folder or log.jsonl, an `r3lab bench` folder, trajectories.jsonl, "
                        f"or another system's run ({', '.join(FORMATS[3:])})")
    add_dataclass_arguments(parser, DashboardConfig)
    add_dataclass_arguments(parser, CollapseConfig)


def run(args) -> int:
    cfg = dataclass_from_args(DashboardConfig, args)
    fig = crop_dashboard(args.path, dataclass_from_args(CollapseConfig, args), format=cfg.format,
                         image_root=cfg.image_root or None, tokenizer=cfg.tokenizer or None)
    src = Path(args.path)
    out = Path(cfg.out) if cfg.out else (src if src.is_dir() else src.parent) / "dashboard.html"
    save_dashboard(fig, out)
    collapse = fig.layout.meta["collapse"]
    print(collapse.get("message", ""))
    print(f"wrote {out}")
    return 0
