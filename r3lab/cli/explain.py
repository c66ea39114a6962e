"""`r3lab explain --policy P --data D [--n N] [--methods ...] --out DIR`: why each crop went where it did.

Greedy rollouts on the first N samples, every crop explained (attention, gradients, patching, logit lens),
faithfulness measured against the named landmark and a random map; writes records.jsonl (one record per
crop), faithfulness.json, summary.json, figure.html (the faithfulness figure) and report.html (one page).
"""

from __future__ import annotations

from pathlib import Path

from ..core.settings import short
from ..evaluation.evaluation import EvalConfig
from ..explain.record import METHODS, WhyConfig
from ..explain.runs import explain_samples
from ..viz.explain import explain_report, plot_faithfulness
from .args import add_dataclass_arguments, dataclass_from_args
from .inputs import add_policy_arguments, check_data, load_samples, load_start_policy


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    parser.add_argument("--data", default="", help="dataset folder or samples.jsonl to roll out on")
    parser.add_argument("--n", type=int, default=8, help="explain the crops of the first n samples (default: 8)")
    parser.add_argument("--out", default="", help="folder to write the records, faithfulness.json and report.html into")
    parser.add_argument("--max-figures", type=int, default=12, help="crops drawn in report.html (default: 12)")
    add_dataclass_arguments(parser, WhyConfig)


def run(args) -> int:
    if not args.out:
        raise ValueError("no output folder: pass --out DIR (records.jsonl, faithfulness.json and report.html go there)")
    if args.n < 1:
        raise ValueError(f"--n {short(args.n)}: explain at least one sample")
    cfg = dataclass_from_args(WhyConfig, args)  # bad methods / targets fail before the model loads
    if not cfg.methods:  # a report holding only the random baseline would explain nothing
        raise ValueError(f"--methods is empty: name at least one of {','.join(METHODS)}, or leave the flag out for all")
    check_data(args.data)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file: pass a folder")
    policy = load_start_policy(args.policy, args.dtype, args.attn, args.calls)
    samples = load_samples(args.data, policy.view, policy.prompt.calls)[: args.n]
    settings = EvalConfig.for_policy(policy).rollout  # the checkpoint's own evaluation settings, greedy
    res = explain_samples(policy, samples, cfg, rollout_settings=settings)
    res.save(out)
    print(
        f"{res.info['crops']} crops explained on {res.info['samples']} samples "
        f"({res.info['no_crop']} made no crop call)"
    )
    if not res.records:
        print(res.info["message"])
        return 0
    for name, m in res.summary["methods"].items():
        vals = " ".join(
            f"{k} {'-' if m[k] is None else f'{m[k]:.3f}'}" for k in ("pointing_game", "deletion_auc", "insertion_auc")
        )
        print(f"  {name:22s} {vals}  n {m['n']}")
    for line in res.info["not_available"]:
        print("  not available:", line)
    plot_faithfulness(res.summary).write_html(out / "figure.html", include_plotlyjs=True)
    explain_report(out / "report.html", res.summary, res.records, res.images(), args.max_figures)
    print(f"wrote {out}/records.jsonl, faithfulness.json, summary.json, figure.html, report.html")
    return 0
