"""`r3lab bench --audit`: the audit settings on a real benchmark, chunk by chunk while the chunk's images are decoded,
every answer scored by the benchmark's own rule (`r3lab.bench.scoring.score_item`).

A question's record gets `audit`: per setting {"hit", "answer", "tokens", "crops"} (majority_no_crop also the k
answers and whether any was right), the chunk's seconds per setting shared evenly over its questions, and attention
vs box where the benchmark names target boxes; every category's row gets the keys of `r3lab eval --audit`, the chance
level of a question being one over its number of options.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..bench.run import BenchConfig, BenchResult, run_bench
from ..bench.scoring import score_item
from ..engine.config import RolloutSettings
from ..evaluation.cost import cost_rows
from ..evaluation.necessity import BenchNecessity
from ..explain.attention_box import attention_box_counts
from .audit import SETTINGS, AuditSettings, audit_table, wilson
from .audit_run import run_audit


class BenchAudit:
    """`run_bench`'s extras for the audit (`BenchConfig.audit`)."""

    def __init__(
        self, settings: RolloutSettings, audit: AuditSettings | None = None, batch_rows: int = 4, seed: int = 0
    ):
        self.settings, self.audit, self.batch_rows, self.seed = settings, audit or AuditSettings(), batch_rows, seed

    def items(self, policy, name: str, samples: list, trajectories: list, scripts: list | None) -> list[dict]:
        def hit(sample, text):
            return float(score_item(name, text, sample.provenance, sample.regions)["hit"])

        n = len(samples)
        res = run_audit(
            policy,
            samples,
            trajectories,
            self.settings,
            self.audit,
            batch_rows=self.batch_rows,
            seed=self.seed,
            hit=hit,
            chance={"chunk": 0.5},
            groups=["chunk"] * n,
            scripts=scripts,
            progress=False,
        )
        out = []
        for i, (s, q) in enumerate(zip(samples, res.questions)):
            rec = {
                "chance": 1.0 / max(1, len(s.provenance.get("options", {}) or {1: 1})),
                "settings": {},
                "attention_box": q["attention_box"],
            }
            for k in SETTINGS:
                got = q["settings"][k]
                rec["settings"][k] = {
                    "hit": res.hits[k][i],
                    "answer": got["answer"],
                    "tokens": got.get("tokens", _tokens(res.runs[k][i])),
                    "crops": _calls(res.runs[k][i]),
                }
            rec["settings"]["majority_no_crop"]["answers"] = q["settings"]["majority_no_crop"]["answers"]
            rec["settings"]["majority_no_crop"]["any_hit"] = q["settings"]["majority_no_crop"]["any_correct"]
            rec["seconds"] = {k: res.seconds[k][i] for k in SETTINGS}
            out.append({"audit": rec})
        return out

    def rows(self, items: list[dict], groups: list[str]) -> dict[str, dict]:
        return bench_audit_rows(items, groups, self.audit.k)


def bench_audit_rows(items: Sequence[dict], groups: Sequence[str], k: int) -> dict[str, dict]:
    """The audit keys per category (and "all") from benchmark items with their `audit` record."""
    if any(not isinstance(it.get("audit"), dict) for it in items):
        raise ValueError("bench_audit_rows: every item needs its 'audit' record (an `r3lab bench --audit` run)")
    recs = [it["audit"] for it in items]
    acc = {
        "own": [float(it["hit"]) for it in items],
        **{s: [float(r["settings"][s]["hit"]) for r in recs] for s in SETTINGS},
        "pass_at_k_no_crop": [float(r["settings"]["majority_no_crop"]["any_hit"]) for r in recs],
    }
    chance = {}
    for g in set(groups):
        got = [r["chance"] for r, gg in zip(recs, groups) if gg == g]
        chance[g] = sum(got) / len(got)
    rows = audit_table(groups, acc, k, chance)
    spent = {
        "own": [{"tokens": float(it["tokens"]), "crops": float(it["crops"])} for it in items],
        **{
            s: [{"tokens": float(r["settings"][s]["tokens"]), "crops": float(r["settings"][s]["crops"])} for r in recs]
            for s in SETTINGS
        },
    }
    for s, per in spent.items():
        seconds = [it.get("seconds") if s == "own" else (r.get("seconds") or {}).get(s) for it, r in zip(items, recs)]
        for fam, row in cost_rows(s, groups, per, acc[s], [x or {} for x in seconds]).items():
            rows[fam].update(row)
    for fam in rows:
        counts = attention_box_counts(
            [a for g, r in zip(groups, recs) if fam in ("all", g) for a in r["attention_box"]]
        )
        for key, hits in (
            ("attn_in_region", counts["attn_box_both"] + counts["attn_box_attention_only"]),
            ("box_on_region", counts["attn_box_both"] + counts["attn_box_box_only"]),
        ):
            counts[f"{key}_lo"], counts[f"{key}_hi"] = wilson(hits, counts["attn_box_n"])
        rows[fam].update(counts)
    return rows


class Extras:
    """Several `run_bench` extras as one: each question's fields and each row's keys, merged."""

    def __init__(self, *parts):
        self.parts = [p for p in parts if p is not None]

    def items(self, *args) -> list[dict]:
        got = [p.items(*args) for p in self.parts]
        return [{k: v for d in per for k, v in d.items()} for per in zip(*got)]

    def rows(self, items: list[dict], groups: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for p in self.parts:
            for fam, row in p.rows(items, groups).items():
                out.setdefault(fam, {}).update(row)
        return out


def bench_audit(
    policy, name: str, config: BenchConfig | None = None, audit: AuditSettings | None = None, **kw
) -> BenchResult:
    """`run_bench` with the audit (and tool necessity where `config.necessity`) in every category's row; `kw` go
    to `run_bench` (progress, keep_images, scripts)."""
    cfg = replace(config or BenchConfig(), audit=True)
    extras = Extras(
        BenchNecessity(cfg.rollout, cfg.batch, cfg.seed) if cfg.necessity else None,
        BenchAudit(cfg.rollout, audit, cfg.batch, cfg.seed),
    )
    return run_bench(policy, name, cfg, extras=extras, **kw)


def _tokens(traj) -> int:
    trajs = traj if isinstance(traj, list) else [traj]
    return sum(len(p.ids or []) for t in trajs for p in t.pieces if p.kind == "model_text")


def _calls(traj) -> int:
    trajs = traj if isinstance(traj, list) else [traj]
    return sum(sum(e.ok for e in t.events) + len([p for p in t.image_pieces if p.info.role == "given"]) for t in trajs)
