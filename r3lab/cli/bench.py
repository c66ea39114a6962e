"""`r3lab bench NAME --data PATH --policy PATH [--n N] [--out DIR] [--necessity true]`: a policy on a real
benchmark, scored like lmms-eval / VLMEvalKit; writes table.md, results.json, items.jsonl (full trajectories),
crops/ and figure.png. `--necessity true` adds the tool-necessity keys of `r3lab eval` to every category's row,
`--audit` the audit's (format-only, dummy crop, result-only, the tool-only solved set, attention vs box, cost per
correct answer)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..audit.bench_audit import bench_audit
from ..bench.readers import BENCHMARKS
from ..bench.run import OWN, BenchConfig, run_bench
from ..core.files import check_out_dir
from ..evaluation.audit_settings import AuditSettings
from ..evaluation.necessity import bench_necessity
from ..viz.bench import plot_bench
from .args import add_dataclass_arguments, dataclass_from_args
from .inputs import add_policy_arguments, load_start_policy


def add_arguments(parser) -> None:
    parser.add_argument("name", choices=BENCHMARKS, help="which benchmark --data holds")
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, BenchConfig)
    add_dataclass_arguments(parser, AuditSettings, prefix="audit-")
    audit = next(a for a in parser._actions if a.dest == "audit")  # `--audit` alone turns it on
    audit.nargs, audit.const = "?", True


def run(args) -> int:
    cfg = dataclass_from_args(BenchConfig, args)
    if not cfg.data:
        raise ValueError(
            f"no data given: pass --data, the local copy of {args.name} (docs/guide/benchmarks-and-runs.md)"
        )
    if not Path(cfg.data).exists():
        raise FileNotFoundError(
            f"--data {cfg.data} does not exist: download {args.name} and lay it out as the "
            "docs/guide/benchmarks-and-runs.md says"
        )
    cfg = replace(cfg, out=cfg.out or f"runs/bench/{args.name}")
    check_out_dir(cfg.out, OWN, cfg.overwrite, "benchmark run")  # before the model loads (and again under the lock)
    audit = dataclass_from_args(AuditSettings, args, prefix="audit-") if cfg.audit else None  # checked first too
    policy = load_start_policy(args.policy, args.dtype, args.attn, args.calls)
    if cfg.audit:
        res = bench_audit(policy, args.name, cfg, audit, keep_images=False)
    else:
        res = (bench_necessity if cfg.necessity else run_bench)(policy, args.name, cfg, keep_images=False)
    out = Path(cfg.out)
    plot_bench(res).savefig(out / "figure.png", dpi=90)
    print(res.table())
    print(f"wrote {out}: table.md, results.json, items.jsonl, crops/, figure.png ({res.seconds:.0f} s)")
    if not res.complete:  # `bench && next` must not go on with a partial result
        print(
            f'partial: interrupted after {len(res.items)} of {res.total} questions; results.json says "complete": false'
        )
        return 130
    return 0
