"""One audit of one set of samples: every setting rolled out family by family and timed, scored by one rule, then
the keys per family (accuracies with chance levels, the tool-only solved set, tool necessity when asked, attention
vs box, cost per correct answer) and one record per question (`questions.py`: what `report.html` shows).

`eval_audit` is `r3lab eval --audit`: `evaluate` with `run_audit` after the model's own rollout; chunk by chunk with a
benchmark's own scoring, `run_audit` is `r3lab bench --audit` (`r3lab.audit.bench_audit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Sequence

from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.trajectory import IMAGE
from ..engine.config import RolloutSettings
from ..evaluation.audit_settings import AuditSettings
from ..evaluation.chance import chance_of
from ..evaluation.cost import by_family, cost_rows
from ..evaluation.evaluation import EvalConfig, EvalResult, evaluate
from ..evaluation.necessity import VARIANTS, ablation_rollouts, necessity_table, needs_crop
from ..evaluation.questions import question_record, reward_hit
from ..explain.attention_box import attention_box_counts, attention_vs_box
from .audit import SETTINGS, audit_rollouts, audit_table, majority, wilson

if TYPE_CHECKING:
    from ..model.policy import Policy

Hit = Callable[[object, str], float]  # (sample, the model's text) -> 1.0 right / 0.0 wrong


@dataclass
class AuditRun:
    """Keys per family (and "all"), one record per question, the rollouts of every setting."""

    rows: dict[str, dict]
    questions: list[dict] = field(default_factory=list)
    runs: dict[str, list] = field(default_factory=dict, repr=False)  # setting -> per-sample trajectories
    hits: dict[str, list] = field(default_factory=dict, repr=False)  # setting -> per-sample 1.0 / 0.0
    seconds: dict[str, list] = field(default_factory=dict, repr=False)  # setting -> per-sample {"wall_s", "vision_s"}


def eval_audit(
    policy: "Policy", samples: Sequence, config: EvalConfig | None = None, progress: bool | None = None
) -> EvalResult:
    """`evaluate` with the audit (`config.audit` set): the model's own rollout family by family, then `run_audit`'s
    keys in every family's row and its record per question (`EvalResult.questions`); what `r3lab eval --audit` runs."""
    cfg = replace(config or EvalConfig(), audit=True)

    def audit(policy, done, trajs, seconds):
        run = run_audit(
            policy,
            done,
            trajs,
            cfg.rollout,
            cfg.audit_settings,
            own_seconds=seconds,
            batch_rows=cfg.batch_rows,
            seed=cfg.seed,
            necessity=cfg.necessity,
            progress=progress,
        )
        return run.rows, run.questions

    return evaluate(policy, samples, cfg, progress, extras=audit)


def run_audit(
    policy: "Policy",
    samples: Sequence,
    own: Sequence,
    settings: RolloutSettings,
    audit: AuditSettings | None = None,
    *,
    own_seconds: Sequence[dict] | None = None,
    batch_rows: int = 32,
    seed: int = 0,
    necessity: bool = False,
    hit: Hit = reward_hit,
    chance: dict | None = None,
    groups: Sequence[str] | None = None,
    scripts=None,
    progress=None,
) -> AuditRun:
    """Audit the model's own trajectories `own` (one per sample) against every setting of `SETTINGS` (and tool
    necessity's swaps with `necessity`), each rolled out family by family and timed.

    own_seconds: the own rollout's seconds per sample (`cost.by_family`), for its cost per correct answer.
    hit: how an answer is scored; chance: per family, a uniform guess's accuracy (default `chance_of(samples)`);
    groups: each sample's family (default: `sample.family`)."""
    audit = audit or AuditSettings()
    samples, own = list(samples), list(own)
    if len(own) != len(samples):
        raise ValueError(f"run_audit: {len(own)} own trajectories for {len(samples)} samples")
    groups = list(groups) if groups is not None else [getattr(s, "family", "") or "?" for s in samples]
    chance = chance if chance is not None else chance_of(samples)
    names = [*SETTINGS, *(VARIANTS if necessity else ())]
    runs, seconds = {"own": own}, {"own": own_seconds}
    bar = tqdm(names, desc="audit", leave=False, disable=progress_disabled() if progress is None else not progress)
    for name in bar:
        bar.set_postfix_str(name)

        def run(idx, name=name):
            sub = [samples[i] for i in idx]
            forced = None if scripts is None else [scripts[i] for i in idx]
            if name in SETTINGS:
                got = audit_rollouts(
                    policy, sub, [own[i] for i in idx], settings, audit, batch_rows, seed, False, (name,), forced
                )[name]
            else:
                got = ablation_rollouts(policy, sub, settings, batch_rows, seed, False, (name,), forced)[name]
            return [_without_pixels(t) for t in got]

        runs[name], seconds[name] = by_family(policy, groups, run)
    bar.close()
    hits = {k: [hit(s, t.model_text()) for s, t in zip(samples, v)] for k, v in runs.items() if k != "majority_no_crop"}
    votes = [[t.final_answer() for t in ts] for ts in runs["majority_no_crop"]]
    winners = [majority(v) for v in votes]
    hits["majority_no_crop"] = [
        hit(s, f"<answer>{w}</answer>") if w is not None else 0.0 for s, w in zip(samples, winners)
    ]
    any_k = [float(any(hit(s, t.model_text()) >= 0.5 for t in ts)) for s, ts in zip(samples, runs["majority_no_crop"])]
    rows = audit_table(groups, {**hits, "pass_at_k_no_crop": any_k}, audit.k, chance)
    if necessity:
        for fam, row in necessity_table(
            groups,
            {k: hits[k] for k in ("own", *VARIANTS)},
            [bool(t.crops) for t in own],
            [needs_crop(s) for s in samples],
        ).items():
            rows[fam].update(row)
    for name in ("own", *names):
        for fam, row in cost_rows(name, groups, runs[name], hits[name], seconds[name]).items():
            rows[fam].update(row)
    boxes = _attention(policy, own, audit) if audit.attention else [[] for _ in own]
    for fam in rows:
        counts = attention_box_counts([a for g, b in zip(groups, boxes) if fam in ("all", g) for a in b])
        n = counts["attn_box_n"]
        for key, k in (
            ("attn_in_region", counts["attn_box_both"] + counts["attn_box_attention_only"]),
            ("box_on_region", counts["attn_box_both"] + counts["attn_box_box_only"]),
        ):
            counts[f"{key}_lo"], counts[f"{key}_hi"] = wilson(k, n)
        rows[fam].update(counts)
    questions = [
        question_record(
            s,
            g,
            own[i],
            hits["own"][i],
            {k: (runs[k][i], hits[k][i]) for k in names if k != "majority_no_crop"},
            (winners[i], hits["majority_no_crop"][i], votes[i], any_k[i]),
            boxes[i],
        )
        for i, (s, g) in enumerate(zip(samples, groups))
    ]
    for q in questions:
        q["tool_only"] = q["own"]["correct"] and not any(
            q["settings"][k]["correct"] for k in ("no_crop", "majority_no_crop")
        )
    return AuditRun(rows, questions, runs, hits, seconds)


def _without_pixels(trajectories):
    """A setting's trajectories without their images (the audit keeps their text, ids and events): each held its
    own copy of the main image, a few gigabytes over a thousand questions per family."""
    for t in trajectories if isinstance(trajectories, list) else [trajectories]:
        for p in t.pieces:
            if p.kind == IMAGE:
                p.image = None
    return trajectories


def _attention(policy, own, audit: AuditSettings) -> list[list]:
    """Attention vs box for every own trajectory with a crop call and a ground-truth region."""
    out = []
    for t in tqdm(own, desc="attention vs box", leave=False, disable=progress_disabled()):
        out.append(attention_vs_box(policy, t, iou=audit.iou) if t.events and t.gt_boxes else [])
    return out
