"""`r3lab notebooks run`: the notebook series (or its solutions) executed headlessly, parameters checked first."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.settings import short
from ..course.runner import KERNEL, PROFILES, ParameterError, parse_value, run_series


def add_arguments(parser) -> None:
    parser.add_argument("names", nargs="*", help="notebooks by number or name (default: all)")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter (typed like papermill -p)",
    )
    parser.add_argument(
        "-r",
        "--raw",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a string parameter taken verbatim",
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="default", help="smoke: each lesson at its own small sizes"
    )
    parser.add_argument("--out", default="runs/latest", help="output folder (executed notebooks, figures, index.html)")
    parser.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    parser.add_argument("--kernel", default=KERNEL, help="the Jupyter kernel that runs them (registered if missing)")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first notebook that fails")
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="run notebooks/solutions/ (the answer key) into OUT/solutions/; the index of OUT links them",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="record the run into the repository: the lessons' times into r3lab/course/times.json (a "
        "solutions run: the exercises' expected outputs into expected.json), then rewrite every "
        "generated statement (python -m r3lab.course.syllabus)",
    )


def run(args) -> int:
    from ..course.runner import NOTEBOOKS, refresh_index

    given = [k for k, _ in [*args.parameter, *args.raw]]
    if twice := sorted({k for k in given if given.count(k) > 1}):
        raise ValueError(
            f"parameter{'s' if len(twice) > 1 else ''} {', '.join(map(short, twice))} given more than "
            "once (-p / --raw): give each once"
        )
    params = {k: parse_value(v) for k, v in args.parameter}
    params.update({k: v for k, v in args.raw})
    out = Path(args.out) / "solutions" if args.solutions else Path(args.out)
    try:
        results = run_series(
            args.names,
            params,
            args.profile,
            out,
            args.timeout,
            args.kernel,
            args.stop_on_failure,
            folder=NOTEBOOKS / "solutions" if args.solutions else None,
        )
    except (ParameterError, FileNotFoundError) as e:
        print(f"r3lab notebooks: {e}", file=sys.stderr)
        return 2
    if args.solutions:
        refresh_index(Path(args.out))  # the lessons' index links the answer key
    if args.record:
        from ..core.env import REPO_ROOT
        from ..course.exercises import record_expected
        from ..course.syllabus import record_times, write_docs

        got = record_expected(out / "results.json") if args.solutions else record_times(out / "results.json")
        print(f"[r3lab] recorded {', '.join(sorted(got)) or 'nothing (no default run passed)'}")
        print("[r3lab] rewrote", *(str(p.relative_to(REPO_ROOT)) for p in write_docs(REPO_ROOT)) or ["nothing"])
    index = out.resolve() / "index.html"
    print(f"[r3lab] {sum(r.ok for r in results)}/{len(results)} passed; index: {index}")
    return 0 if all(r.ok for r in results) else 1
