"""`r3lab report sweep DIR`: a sweep folder's sweep.html (self-contained, sortable: each point's metrics with seed-aware
intervals and chance levels, the paired comparisons with the baseline, a plot per metric against each swept setting,
every run's status and time), sweep.csv (one row per point x metric) and runs.csv (one row per run)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..core.files import atomic_write_text
from ..sweep.results import load_sweep
from ..viz.sweep_report import summary_rows, sweep_html

USES_TORCH = False  # numbers and a page: `r3lab` does not load torch for it (seconds of a report's time)


def add_arguments(parser) -> None:
    parser.add_argument("folder", metavar="DIR", help="a sweep folder (`r3lab sweep SPEC --out DIR`), finished or not")
    parser.add_argument(
        "--resamples",
        type=int,
        default=0,
        metavar="N",
        help="bootstrap resamples per interval (default: 0, r3lab.sweep.stats.RESAMPLES)",
    )


def write_report(folder, resamples: int = 0) -> tuple[Path, Path]:
    """sweep.html, sweep.csv and runs.csv into `folder`; returns the first two. A sweep still running may be reported
    (its runs so far): these three files are written whole (atomically), and only here."""
    folder = Path(folder)
    sweep = load_sweep(folder)
    results = sweep.summary(resamples or None)
    html = atomic_write_text(folder / "sweep.html", sweep_html(sweep, results))
    out = atomic_write_text(folder / "sweep.csv", _csv(summary_rows(results)))
    atomic_write_text(folder / "runs.csv", _csv(_run_rows(sweep)))
    return html, out


def _run_rows(sweep) -> list[dict]:
    metrics = sweep.metrics()
    return [
        {
            "run": r["folder"],
            "id": r["id"],
            **{f"grid.{k}": v for k, v in r["point"].items()},
            "seed": r["seed"],
            "state": r["status"].state,
            "cause": r["status"].cause,
            "error": r["status"].error,
            "seconds": r["status"].seconds,
            **{m: sweep.run_value(r, m) for m in metrics},
        }
        for r in sweep.runs
    ]


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    names = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in r.items()})
    return buf.getvalue()


def run(args) -> int:
    html, out = write_report(args.folder, args.resamples)
    print(f"wrote {html}, {out} and {out.with_name('runs.csv')}")
    return 0
