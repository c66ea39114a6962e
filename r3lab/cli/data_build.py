"""`r3lab data build`: VLIR samples from the synthetic world, quality-filtered, saved as a dataset folder."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from ..core.regions import ViewConfig
from ..core.settings import short
from ..data.dataset import check_destination, claim_destination, save_dataset
from ..data.filters import FilterConfig, filter_samples
from ..data.tasks import ALL_FAMILIES, FAMILIES, TaskConfig
from ..data.vlir import build_samples
from ..data.world import WorldConfig
from .args import add_dataclass_arguments, dataclass_from_args, parse_bool


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="dataset folder to write (samples.jsonl, meta.json, images/)")
    parser.add_argument(
        "--overwrite",
        type=parse_bool,
        default=False,
        metavar="BOOL",
        help="replace the dataset already in --out (its samples.jsonl, meta.json, images/; default: "
        "false, such a folder is refused)",
    )
    parser.add_argument(
        "--n", type=_positive, default=1000, help=f"number of samples, at most {MAX_SAMPLES:,} (default: 1000)"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="dataset seed, an integer >= 0 (default: 0)")
    parser.add_argument(
        "--families",
        nargs="+",
        default=list(FAMILIES),
        help=f"task families of {' '.join(ALL_FAMILIES)} (default: {' '.join(FAMILIES)})",
    )
    parser.add_argument(
        "--images", choices=["png", "scene"], default="png", help="write PNGs, or scenes re-rendered on load"
    )
    parser.add_argument(
        "--filter",
        type=parse_bool,
        default=True,
        metavar="BOOL",
        help="run the quality filters before saving (default: true)",
    )
    for cls in (WorldConfig, TaskConfig, ViewConfig, FilterConfig):
        add_dataclass_arguments(parser.add_argument_group(cls.__name__), cls)


MAX_SAMPLES = 1_000_000  # one build: every sample is held in memory until it is saved


def _seed(s: str) -> int:
    n = int(s)
    if not 0 <= n <= 2**32 - 1:  # as every config's seed (core.settings.SEED)
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, 4294967295] (a seed is a 32-bit number), got {short(n)}"
        )
    return n


def _positive(s: str) -> int:
    n = int(s)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 sample, got {short(n)}")
    if n > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_SAMPLES:,} samples per build (all are held in "
            f"memory until saved), got {short(n)}: build several datasets instead"
        )
    return n


def run(args) -> int:
    check_destination(args.out, args.overwrite)  # a file, a read-only folder or an existing dataset: before any work
    world, tasks = dataclass_from_args(WorldConfig, args), dataclass_from_args(TaskConfig, args)
    view, fcfg = dataclass_from_args(ViewConfig, args), dataclass_from_args(FilterConfig, args)
    families = [f for x in args.families for f in x.split(",") if f]
    with claim_destination(args.out, args.overwrite):  # one build per folder, from here until it is saved
        return _build(args, world, tasks, view, fcfg, families)


def _build(args, world, tasks, view, fcfg, families) -> int:
    samples = build_samples(args.n, args.seed, families, world, tasks, view)
    report = None
    if args.filter:
        samples, report = filter_samples(samples, view, fcfg)
        print(report)
    meta = {
        "seed": args.seed,
        "families": families,
        "world": world.to_dict(),
        "tasks": tasks.to_dict(),
        "view": asdict(view),
        "filters": asdict(fcfg),
        "filter_report": report.to_dict() if report else None,
    }
    out = save_dataset(samples, args.out, meta, images=args.images, overwrite=args.overwrite)
    print(f"wrote {len(samples)} samples to {out}")
    return 0
