"""The checks of lesson 47's exercises (did the crop matter?): each reads the student's live audit, its questions
or an imported run's audit, and holds their answer to what those show."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..core.settings import short
from .checks import checker, need

# the audit's keys that only a model can give: a setting rolled out again, or its attention read
NEEDS_A_MODEL = (
    "acc_format_only",
    "acc_dummy_crop",
    "acc_result_only",
    "acc_no_crop",
    "acc_majority_no_crop",
    "pass_at_k_no_crop",
    "tool_only",
    "also_solved_without",
    "attn_in_region",
    "attn_box_both",
)


def _measured(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _family(result, family: str) -> dict:
    """A family's row of an EvalResult (or of its `rows`)."""
    rows = getattr(result, "rows", result)
    need(
        isinstance(rows, dict) and family in rows,
        f"no {short(family)} row here: pass the EvalResult of a live audit "
        "(`eval_audit(policy, samples, EvalConfig(...))`) or its `.rows`",
    )
    return rows[family]


@checker("47.1")
def majority_against_pass_at_k(result, pass_chance: float, above_chance: bool, family: str = "read_one") -> str:
    """pass@k's chance level worked out by hand for the run's k, and whether pass@k beats it."""
    row = _family(result, family)
    need(
        all(
            _measured(row.get(k))
            for k in ("pass_at_k_no_crop", "pass_at_k_no_crop_chance", "acc_majority_no_crop_chance")
        ),
        f"this {family} row has no pass@k: run the audit (audit=True)",
    )
    c, pc = row["acc_majority_no_crop_chance"], row["pass_at_k_no_crop_chance"]
    need(0 < c < 1, f"{family}'s chance level is {c}: pick a family whose answers can be guessed")
    k = round(math.log(1 - pc) / math.log(1 - c))
    need(k >= 5, f"this audit sampled k = {k} answers: raise k to 5 (audit_settings={{'k': 5}}, or `-p k 5`)")
    need(
        abs(float(pass_chance) - pc) < 0.01,
        f"{float(pass_chance):.3f} is not pass@{k}'s chance level here: a "
        f"guesser right with probability {c:.2f} misses all {k} tries with probability (1 - {c:.2f})^{k}",
    )
    got = row["pass_at_k_no_crop"]
    need(bool(above_chance) == (got > pc), f"pass@{k} is {got:.2f} against its chance {pc:.2f}: look again")
    return (
        f"{family}, k = {k}: pass@k {got:.2f} against its chance {pc:.2f}; the majority "
        f"{row['acc_majority_no_crop']:.2f} against {c:.2f}"
    )


@checker("47.2")
def right_without_pixels(result, right: int, more_than_chance: bool, family: str = "read_one") -> str:
    """How many questions of a family the model still answers right under format-only (no pixels), and whether that
    is more than a guess would get on average."""
    qs = [q for q in getattr(result, "questions", None) or [] if q.get("family") == family]
    need(
        bool(qs) and all("format_only" in q.get("settings", {}) for q in qs),
        f"no audited {family} question here: pass the EvalResult of a live audit (live['rgrpo'])",
    )
    truth = sum(bool(q["settings"]["format_only"]["correct"]) for q in qs)
    need(
        int(right) == truth,
        f"{int(right)} is not the number of {family} questions answered right under "
        f"format_only: sort report.html by that column, or count q['settings']['format_only']['correct']",
    )
    guess = _family(result, family)["acc_format_only_chance"] * len(qs)
    need(
        bool(more_than_chance) == (truth > guess),
        f"{truth} of {len(qs)} right against {guess:.1f} by guessing: look again",
    )
    said = [q["settings"]["format_only"]["answer"] for q in qs if q["settings"]["format_only"]["answer"]]
    top = max(set(said), key=said.count) if said else None
    return f"{family} without pixels: {truth} of {len(qs)} right, a guess {guess:.1f}" + (
        f"; its most frequent answer {short(top)} ({said.count(top)} of {len(qs)})" if top else ""
    )


@checker("47.3")
def grey_against_dummy(result, gap: float, family: str = "read_one") -> str:
    """acc_blank (a grey image, the vision tower kept) minus acc_dummy_crop (text slots), in points."""
    row = _family(result, family)
    need(
        _measured(row.get("acc_blank")), "no acc_blank in this row: run the audit with necessity=True in the EvalConfig"
    )
    need(_measured(row.get("acc_dummy_crop")), "no acc_dummy_crop in this row: run the audit (audit=True)")
    truth = 100 * (row["acc_blank"] - row["acc_dummy_crop"])
    need(abs(float(gap) - truth) <= 0.5, f"{float(gap):+.1f} is off: 100 x (acc_blank - acc_dummy_crop), in points")
    return (
        f"{family}: a grey crop {row['acc_blank']:.0%}, dummy slots {row['acc_dummy_crop']:.0%} ({truth:+.0f} "
        f"points; chance {row['chance']:.0%})"
    )


@checker("47.4")
def log_against_model(results_json, from_log, need_model) -> str:
    """Which audit numbers an imported run's log gives without a model, and which need one (from the audit's
    results.json written by `r3lab report audit` without `--policy`)."""
    path = Path(results_json)
    need(path.is_file(), f"{path} does not exist: run `r3lab report audit RUN --format deepeyes --out DIR` first")
    res = json.loads(path.read_text())
    need(not res.get("policy"), f"{path} was audited with a policy ({res.get('policy')}): audit the log alone")
    row = res.get("rows", {}).get("all", {})
    from_log, need_model = list(from_log), list(need_model)
    need(len(from_log) >= 2 and len(need_model) >= 2, "name at least two keys of each kind")
    for k in from_log:
        need(
            _measured(row.get(k)),
            f"{short(k)} is not measured in the log's audit ({path}): what it measures is "
            + ", ".join(sorted(k for k, v in row.items() if _measured(v))),
        )
    for k in need_model:
        need(k not in row, f"{short(k)} is in the log's audit: a log gives it")
        need(k in NEEDS_A_MODEL, f"{short(k)} is not an audit key; those a model gives: {', '.join(NEEDS_A_MODEL)}")
    return f"from the log: {', '.join(f'{k} {row[k]:.2f}' for k in from_log)}; with a model only: " + ", ".join(
        need_model
    )
