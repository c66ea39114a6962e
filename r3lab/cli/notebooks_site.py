"""`r3lab notebooks site`: the course's site (executed lessons, docs/, API reference) built offline with MkDocs."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument(
        "--run",
        default="runs/main",
        help="run folder whose executed notebooks the lesson pages show (r3lab notebooks run --out)",
    )
    parser.add_argument("--out", default="site", help="folder the site is written to")
    parser.add_argument("--strict", action="store_true", help="fail on any MkDocs warning (broken links, ...)")


def run(args) -> int:
    from ..course.site import build_site

    try:
        index = build_site(args.run, args.out, strict=args.strict)
    except ImportError as e:
        print(f"r3lab notebooks site: {e}", file=sys.stderr)
        return 2
    print(f"[r3lab] site: {index}")
    return 0
