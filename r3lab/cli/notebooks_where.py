"""`r3lab notebooks where`: the folders the course's lessons, solutions and shipped checkpoints are read from (a
clone's own, or those a wheel installed); with `--copy DIR`, the lessons and solutions copied there to edit."""

from __future__ import annotations

import shutil
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument(
        "--copy",
        default="",
        metavar="DIR",
        help="copy the lessons (and solutions/) into this folder; files already there are kept",
    )


def run(args) -> int:
    from ..core.env import ASSETS, NOTEBOOKS
    from ..course.runner import find_notebooks

    lessons = find_notebooks(folder=NOTEBOOKS)
    if not lessons:
        raise FileNotFoundError(
            f"no lessons in {NOTEBOOKS}: install r3lab with its course (pip install 'r3lab[course]') or work in a clone"
        )
    if not args.copy:
        print(
            f"lessons:     {NOTEBOOKS} ({len(lessons)} notebooks)\nsolutions:   {NOTEBOOKS / 'solutions'}\n"
            f"checkpoints: {ASSETS / 'checkpoints'}\n"
            "run them with `r3lab notebooks run`, or copy them to edit: r3lab notebooks where --copy DIR"
        )
        return 0
    dest = Path(args.copy)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} is a file: name a folder to copy the lessons into")
    copied, kept = 0, []
    for src in lessons + find_notebooks(folder=NOTEBOOKS / "solutions"):
        to = dest / src.relative_to(NOTEBOOKS)
        if to.exists():
            kept.append(str(to))
            continue
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, to)
        copied += 1
    print(
        f"copied {copied} notebooks from {NOTEBOOKS} into {dest}"
        + (
            f"; kept {len(kept)} already there (yours): {', '.join(kept[:3])}{' ...' if len(kept) > 3 else ''}"
            if kept
            else ""
        )
    )
    return 0
