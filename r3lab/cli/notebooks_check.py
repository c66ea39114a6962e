"""`r3lab notebooks check`: the pre-class check (can this machine run the course, and how long each lesson takes)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="only look at the machine (Python, packages, kernel, memory, disk, figures); no timing",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="store this machine's calibration as the reference in r3lab/course/times.json (do it on "
        "the machine whose lesson times are recorded there)",
    )


def run(args) -> int:
    from ..course.preclass import record_calibration, run_check

    report = run_check(calibration=not args.no_calibration)
    for line in report.lines():
        print(line)
    if args.record and report.calibration_s is not None:
        record_calibration(report.calibration_s)
        print(f"recorded the calibration ({report.calibration_s:.1f} s) as the reference")
    return 0 if report.ok else 1
