"""`r3lab data stats DIR`: counts per family, crops per sample, box sizes, and their figure."""

from __future__ import annotations

from pathlib import Path

from ..data.dataset import load_dataset
from ..data.stats import dataset_stats
from ..viz.datasets import plot_stats


def add_arguments(parser) -> None:
    parser.add_argument("path", help="dataset folder (or its samples.jsonl)")
    parser.add_argument("--figure", default=None, help="where to save the figure (default: DIR/stats.png)")
    parser.add_argument(
        "--errors",
        choices=["raise", "report"],
        default="raise",
        help="raise on the first bad line, or report bad lines and go on",
    )


def run(args) -> int:
    ds = load_dataset(args.path, errors=args.errors)
    for s in ds.samples:  # whole files, as training reads them (loading reads only each header)
        if isinstance(s.image, str):
            s.load_image()
    for e in ds.errors:
        print(f"bad line {e.line}: {e.message}")
    st = dataset_stats(ds.samples, ds.view)
    print(st)
    out = Path(args.figure) if args.figure else ds.path / "stats.png"
    plot_stats(st).savefig(out, dpi=90)
    print(f"figure: {out}")
    return 1 if ds.errors else 0
