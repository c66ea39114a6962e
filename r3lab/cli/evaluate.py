"""`r3lab eval`: greedy held-out evaluation of a checkpoint, per task family; `--audit` adds the 2026 audit
(format-only, dummy crop, result-only, tool-free settings, the tool-only solved set, attention vs box, cost per correct
answer). With --out: results.json, trajectories.jsonl, questions.jsonl and report.html (one self-contained page)."""

from __future__ import annotations

import contextlib
import json

from ..audit.audit import AUDIT_TABLE
from ..audit.audit_run import eval_audit
from ..core.files import FolderLock, check_out_dir
from ..evaluation.box_report import box_errors, format_box_errors
from ..evaluation.evaluation import EvalConfig, evaluate
from ..viz.audit_report import audit_html, write_page
from .args import add_dataclass_arguments, dataclass_values, parse_bool
from .inputs import add_policy_arguments, check_data, load_samples, load_start_policy

# unset, the rollout settings come from the checkpoint (its recipe's evaluation settings), then EvalConfig's defaults
CHECKPOINT_DEFAULTS = ("max_crops", "max_new_tokens", "max_segment_tokens", "temperature", "top_p")
# what --out receives; --overwrite replaces these, nothing else
OWN = ("results.json", "trajectories.jsonl", "questions.jsonl", "report.html")


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, EvalConfig)
    parser.set_defaults(**{k: None for k in CHECKPOINT_DEFAULTS})
    act = next(a for a in parser._actions if a.dest == "necessity")  # tool necessity: on by default for `r3lab eval`
    act.default, act.help = True, act.help.replace("(default: False)", "(default: True)")
    audit = next(a for a in parser._actions if a.dest == "audit")  # `--audit` alone turns it on
    audit.nargs, audit.const = "?", True
    parser.add_argument(
        "--box-errors",
        action="store_true",
        help="also print where the crop boxes go wrong (misses, per-side errors in input pixels, "
        "written vs true size, the integer-grid ceiling)",
    )
    parser.add_argument(
        "--overwrite",
        type=parse_bool,
        default=False,
        metavar="BOOL",
        help="replace the results already in --out (default: false, such a folder is refused)",
    )


def run(args) -> int:
    given = dataclass_values(EvalConfig, args)
    given["rollout"] = {k: v for k, v in given["rollout"].items() if v is not None}  # unset: the checkpoint's
    EvalConfig(**given)  # bad settings fail before the model loads
    check_data(args.data)
    if given.get("out"):  # a file, a read-only folder or earlier results: refused before any rollout
        check_out_dir(given["out"], OWN, args.overwrite, "evaluation")
    with FolderLock(given["out"], "evaluation") if given.get("out") else contextlib.nullcontext():
        return _evaluate(args, given)


def _evaluate(args, given: dict) -> int:
    policy = load_start_policy(args.policy, args.dtype, args.attn, args.calls)
    cfg = EvalConfig.for_policy(policy, **given)
    print("evaluation settings:", cfg.rollout)
    res = (eval_audit if cfg.audit else evaluate)(policy, load_samples(cfg.data, policy.view, policy.prompt.calls), cfg)
    print(res.table())
    if cfg.audit and "acc_format_only" in res.rows.get("all", {}):
        print(res.table(AUDIT_TABLE))
    if getattr(args, "box_errors", False):
        print(format_box_errors(box_errors(res.trajectories)))
    if cfg.out:
        folder = res.save(cfg.out)
        results = {**json.loads((folder / "results.json").read_text()), "source": str(args.policy or "r3-tiny")}
        write_page(folder / "report.html", audit_html(results, res.records(), f"r3lab eval: {folder.name}"))
        print(f"wrote {folder}: results.json, trajectories.jsonl, questions.jsonl, report.html")
    if not res.complete:  # `eval && next` must not go on with a partial result
        print(
            f"partial: interrupted after {res.rows['all']['n']} samples"
            + (f'; {cfg.out}/results.json says "complete": false' if cfg.out else "")
        )
        return 130
    return 0
