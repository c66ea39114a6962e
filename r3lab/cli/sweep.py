"""`r3lab sweep SPEC.yaml --out DIR`: a command over a grid of settings x seeds, each run its own process and folder,
resumable, on this machine's cores or a Ray cluster; then sweep.html and sweep.csv (`r3lab report sweep`).

The spec's keys: command (train sft | train rgrpo | eval | recipe | notebook NN), settings, grid, seeds, eval,
baseline, metrics (docs/guide/sweeps.md). Running it again into the same --out resumes: runs done are kept, failed
or unfinished ones run again. Exit status: 0 when every run is done, 1 when some failed.
"""

from __future__ import annotations

from ..sweep.runner import BACKENDS, MAX_POINTS, run_sweep
from ..sweep.spec import read_spec
from .sweep_check import check_spec


def add_arguments(parser) -> None:
    parser.add_argument(
        "spec",
        metavar="SPEC.yaml",
        help="the sweep: YAML or JSON with command, settings, grid, seeds, eval, baseline, metrics",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="the sweep's folder: sweep.json, runs/<point_seed-id>/ (each "
        "run's status.json, log.txt and outputs), sweep.html, sweep.csv; the same --out resumes",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="local backend: runs at once, one thread "
        "each (default: 0, the cores); ray without --address: the local cluster's CPUs",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: a pool of processes here; ray: "
        "each run a Ray task (pip install 'r3lab[cluster]') (default: local)",
    )
    parser.add_argument(
        "--address",
        default="",
        metavar="ADDR",
        help="ray: the cluster to join (auto: the one "
        "`ray start` made here, or HOST:PORT); none starts a local one for this sweep",
    )
    parser.add_argument(
        "--cpus-per-run", type=float, default=1.0, metavar="N", help="ray: CPUs each run's task asks for (default: 1)"
    )
    parser.add_argument(
        "--gpus-per-run", type=float, default=0.0, metavar="N", help="ray: GPUs each run's task asks for (default: 0)"
    )
    parser.add_argument(
        "--max-points",
        type=int,
        default=MAX_POINTS,
        metavar="N",
        help=f"refuse a spec of more runs (points x seeds) than this (default: {MAX_POINTS})",
    )
    parser.add_argument(
        "--extend",
        action="store_true",
        help="the folder's sweep with new grid values or seeds added (the runs there are kept)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds one run may take, all its "
        "steps together, before it is stopped and marked failed (timeout) (default: 0, none)",
    )
    parser.add_argument(
        "--report",
        choices=("true", "false"),
        default="true",
        help="write sweep.html and sweep.csv when the runs end (default: true)",
    )


def run(args) -> int:
    spec = read_spec(args.spec)
    outcome = run_sweep(
        spec,
        args.out,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        max_points=args.max_points,
        extend=args.extend,
        timeout=args.timeout,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        check=check_spec,
    )
    print(outcome.line())
    if args.report == "true":
        from .report_sweep import write_report

        html, csv = write_report(args.out)
        print(f"report: {html} and {csv}")
    return 0 if outcome.ok else 1
