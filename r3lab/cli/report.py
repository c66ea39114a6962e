"""`r3lab report audit RUN [--out DIR] [--policy P]`: the audit of any run as one self-contained report.html.

RUN is an `r3lab eval` folder (its results.json and questions.jsonl: the page is written anew), or another system's
run (the official VLM-R3 evaluation, DeepEyes, a verl agent loop, TRL completions, an `r3lab bench` folder or
trajectories.jsonl): every audit number its logs hold, without a model (crop rates, boxes against the ground truth,
correctness, cost in characters and tokens), and with --policy the rest (attention vs box, every audit setting rolled
out by that policy on the run's questions). Writes results.json, questions.jsonl and report.html into --out.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..audit.imported import LOG_KEYS, audit_log, audit_with_policy, load_trajectories
from ..core.files import FolderLock, check_out_dir, read_text
from ..evaluation.audit_settings import AuditSettings
from ..evaluation.behaviour import FORMATS
from ..evaluation.questions import load_questions, nan_to_none, save_questions
from ..viz.audit_report import audit_html, write_page
from .args import add_dataclass_arguments, dataclass_from_args, parse_bool
from .inputs import add_policy_arguments

OWN = ("results.json", "questions.jsonl", "report.html")  # what --out receives for an imported run


def add_arguments(parser) -> None:
    parser.add_argument(
        "run",
        help=f"an `r3lab eval` --out folder, or another system's run (a file or folder): {', '.join(FORMATS[1:])}",
    )
    parser.add_argument(
        "--out",
        default="",
        help="folder for results.json, questions.jsonl and report.html (default: "
        "the eval folder itself; for another system's run, <its folder>/audit)",
    )
    parser.add_argument(
        "--format", default="auto", choices=FORMATS, help="the run's format (default: told apart by its fields)"
    )
    parser.add_argument(
        "--image-root", default="", help="the folder the run's image paths start from (default: beside the run)"
    )
    parser.add_argument(
        "--tokenizer",
        default="",
        help="a verl run's token ids: the local model folder that wrote them (default: --policy's)",
    )
    parser.add_argument(
        "--images",
        type=parse_bool,
        default=True,
        metavar="BOOL",
        help="read the run's images to embed its crops (default: true)",
    )
    parser.add_argument(
        "--overwrite",
        type=parse_bool,
        default=False,
        metavar="BOOL",
        help="replace an audit already in --out (default: false)",
    )
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, AuditSettings, prefix="audit-")


def run(args) -> int:
    src = Path(args.run)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist: pass an `r3lab eval` --out folder or another system's run")
    audit = dataclass_from_args(AuditSettings, args, prefix="audit-")
    if src.is_dir() and (src / "questions.jsonl").is_file() and (src / "results.json").is_file() and not args.policy:
        try:
            results = json.loads(read_text(src / "results.json"))
        except ValueError as err:
            raise ValueError(
                f"{src / 'results.json'}: not JSON ({err}): write the run anew (r3lab eval --audit)"
            ) from None
        rows = results.get("rows", {}) if isinstance(results, dict) else None
        if not isinstance(rows, dict) or not all(isinstance(r, dict) for r in rows.values()):
            raise ValueError(
                f"{src / 'results.json'} is not an evaluation's results (a record with 'rows'): write "
                "the run anew (r3lab eval --audit)"
            )
        results.setdefault("source", str(src))
        page = write_page(
            Path(args.out or src) / "report.html", audit_html(results, load_questions(src), f"r3lab audit: {src.name}")
        )
        print(f"wrote {page}")
        return 0
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / "audit"
    check_out_dir(out, OWN, args.overwrite, "audit")
    with FolderLock(out, "audit"):
        return _audit(args, src, out, audit)


def _audit(args, src: Path, out: Path, audit: AuditSettings) -> int:
    policy = None
    if args.policy:
        from .inputs import load_start_policy

        policy = load_start_policy(args.policy, args.dtype, args.attn, args.calls)
    tokenizer = args.tokenizer or (policy if policy is not None else None)
    trajs = load_trajectories(
        src,
        args.format,
        args.image_root or None,
        tokenizer,
        policy.view if policy else None,
        load_images=args.images or policy is not None,
    )
    res = audit_with_policy(policy, trajs, audit) if policy is not None else audit_log(trajs, audit.iou, args.images)
    results = {
        "source": str(src),
        "format": args.format,
        "policy": args.policy or None,
        "rows": nan_to_none(res.rows),
        "config": {"audit": vars(audit)},
        "complete": True,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    save_questions(out, res.questions)
    write_page(out / "report.html", audit_html(results, res.questions, f"r3lab audit: {src.name}"))
    keys = [k for k in LOG_KEYS if k in res.rows.get("all", {})]
    print("| family | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
    for fam, row in res.rows.items():
        print(f"| {fam} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    print(f"wrote {out}/results.json, questions.jsonl, report.html ({len(res.questions)} questions)")
    return 0


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.3f}"
