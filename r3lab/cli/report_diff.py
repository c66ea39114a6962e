"""`r3lab report diff RUN_A RUN_B [--out DIR]`: the reproduction check, the questions whose correctness differs
between two runs (matched by sample id), as diff.json and diff.html. A run is an `r3lab eval` folder (its
questions.jsonl), an `r3lab report audit` folder, or another system's run (read as `r3lab report audit` reads it)."""

from __future__ import annotations

import json
from pathlib import Path

from ..audit.imported import audit_log, load_trajectories
from ..core.files import atomic_write_text
from ..evaluation.behaviour import FORMATS
from ..evaluation.questions import diff_runs, load_questions
from ..viz.audit_report import diff_html, write_page
from .args import parse_bool


def add_arguments(parser) -> None:
    parser.add_argument("run_a", help="the first run (e.g. the published outputs)")
    parser.add_argument("run_b", help="the second run (e.g. the reproduction)")
    parser.add_argument("--out", default="", help="folder for diff.json and diff.html (default: runs/diff)")
    parser.add_argument(
        "--images",
        type=parse_bool,
        default=True,
        metavar="BOOL",
        help="another system's run: read its images to embed the crops (default: true)",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="another system's run: its format, both runs' (default: told apart by its fields)",
    )
    parser.add_argument(
        "--image-root",
        default="",
        help="another system's run: the folder its image paths start from (default: beside the run)",
    )


def questions_of(run: str, images: bool = True, format: str = "auto", image_root: str = "") -> list[dict]:
    """A run's question records: its questions.jsonl, else its trajectories audited from the logs."""
    path = Path(run)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass two run folders or files")
    if (path / "questions.jsonl").is_file() or path.name == "questions.jsonl":
        return load_questions(path)
    trajs = load_trajectories(path, format, image_root or None, load_images=images)
    return audit_log(trajs, images=images).questions


def run(args) -> int:
    kw = dict(images=args.images, format=args.format, image_root=args.image_root)
    diff = diff_runs(questions_of(args.run_a, **kw), questions_of(args.run_b, **kw))
    out = Path(args.out or "runs/diff")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "diff.json", json.dumps({"a": args.run_a, "b": args.run_b, **diff}, indent=1))
    write_page(out / "diff.html", diff_html(diff, args.run_a, args.run_b))
    for fam, c in diff["families"].items():
        print(f"{fam:12s} {c['n']:5d} questions: {c['fixed']} fixed, {c['broken']} broken")
    print(
        f"{len(diff['changed'])} questions differ ({len(diff['only_a'])} only in A, {len(diff['only_b'])} only in "
        f"B); wrote {out}/diff.json, diff.html"
    )
    return 0
