"""Reading a replication table: the statements its numbers support, each with the reason behind it.

`table_notes(results, chance)` turns a recipe's results (the card's, or a run's) into sentences a lesson renders
under its table: which rows sit at chance or below it, what R-GRPO changed against SFT and whether the intervals
separate, how the row without the region reward compares on the crop IoU, what the oracle and random crops bound.
Every number in a sentence comes from `results`; the reasons are the mechanisms the course teaches.
"""

from __future__ import annotations

import math

from .report import LABELS, families_of

WHY_CONTROL = (
    "the control question never needs a crop and the models do not crop on it, so rows that differ "
    "only in their crops cannot differ here: the base stage's training decides this column for every row"
)
WHY_BELOW = (
    "below chance, the answer follows what the crops show, systematically: crops that miss the "
    "detail give a consistent wrong reading"
)
WHY_PRIOR = (
    "the model does not crop on these questions, so this is its answer prior: it prefers options that are "
    "wrong here more often than a guess would (a bias from training, not a reading)"
)
WHY_NO_CROP = "the coarse view does not hold the answer: the world is built so (notebook 00 measures it)"
WHY_NO_REGION = (
    "the accuracy reward alone pays only for answers whose crop held the detail, which also moves "
    "crops onto the named landmark; the region reward adds a denser signal for how well the box fits"
)


def _name(row: str) -> str:
    return LABELS.get(row, row)


def _acc(r: dict) -> tuple[float, float, float]:
    return r.get("accuracy", math.nan), r.get("accuracy_lo", math.nan), r.get("accuracy_hi", math.nan)


def _apart(a: tuple, b: tuple) -> bool:
    """Whether two (value, lo, hi) intervals do not overlap."""
    return a[1] > b[2] or b[1] > a[2]


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def table_notes(results: dict, chance: dict[str, float], families=None) -> list[str]:
    """Sentences (markdown) about `results`' rows against `chance` (family -> accuracy of a guess)."""
    rows, fams = results["rows"], families_of(results, families)
    notes = []
    for fam in [f for f in fams if f in chance]:
        c = chance[fam]
        at = [n for n, r in rows.items() if fam in r and r[fam]["accuracy_lo"] <= c <= r[fam]["accuracy_hi"]]
        below = [n for n, r in rows.items() if fam in r and r[fam]["accuracy_hi"] < c]
        if len(at) + len(below) == len(rows):
            if fam == "control" and all(r[fam].get("crop_rate", 0) < 0.05 for r in rows.values()):
                why = WHY_CONTROL
            else:
                why = _why_no_row(rows, fam, chance) or "no model in this table answers it better than a guess"
            notes.append(
                f"**{fam}: no row beats chance** ({_pct(c)}; the rows score "
                f"{', '.join(_pct(r[fam]['accuracy']) for r in rows.values())}): {why}."
                + "".join(_answered(n, rows[n][fam], c) for n in below)
            )
            continue
        if "no_crop" in at and fam != "control":
            notes.append(
                f"**{fam}, row (1) without crops: {_pct(rows['no_crop'][fam]['accuracy'])}, at chance "
                f"({_pct(c)})**: {WHY_NO_CROP}."
            )
        if "random" in at and fam != "control":
            share = rows["random"].get("all", {}).get("contains_detail", math.nan)
            notes.append(
                f"**{fam}, {_name('random')}: {_pct(rows['random'][fam]['accuracy'])}, at chance**: "
                "a box of the right size at a random place rarely holds the detail "
                f"(crops holding it: {_pct(share)})."
            )
        for n in below:
            why = WHY_PRIOR if rows[n][fam].get("crop_rate", 1.0) < 0.05 else WHY_BELOW
            notes.append(
                f"**{fam}, {_name(n)}: {_pct(rows[n][fam]['accuracy'])}, below chance ({_pct(c)})**: {why}."
                + _answered(n, rows[n][fam], c)
            )
    notes += _rgrpo_notes(rows, fams)
    if {"sft", "oracle"} <= set(rows):
        gaps = ", ".join(
            f"{f} {100 * (rows['oracle'][f]['accuracy'] - rows['sft'][f]['accuracy']):+.1f} points"
            for f in fams
            if f in rows["sft"] and f != "control"
        )
        read_gap = rows["oracle"].get("read_one", {}).get("accuracy", math.nan) - rows["sft"].get("read_one", {}).get(
            "accuracy", math.nan
        )
        notes.append(
            f"**Oracle crops over the SFT model's own** ({gaps}): what perfect boxes add to this model's own "
            "*when* and *integrate*"
            + (
                "; a gap of a few points on read_one says its misses are in reading the crop, not in looking"
                if abs(read_gap) < 0.05
                else ""
            )
            + "."
        )
    return notes


def _why_no_row(rows: dict, fam: str, chance: dict) -> str:
    """Why every row sits at chance on `fam`, when the oracle row says it: the true regions cropped, a single detail
    read well (another family above chance), and still no verdict better than a guess ("" when the table cannot
    tell)."""
    oracle = rows.get("oracle", {})
    reads = [
        f
        for f in oracle
        if f not in (fam, "all", "control") and f in chance and oracle[f].get("accuracy_lo", math.nan) > chance[f] + 0.2
    ]
    if fam not in oracle or not reads:
        return ""
    held = oracle[fam].get("contains_detail", math.nan)
    f = reads[0]
    return (
        f"even {_name('oracle')}, whose crops are the true regions"
        + ("" if math.isnan(held) else f" (crops holding the detail: {_pct(held)})")
        + f", scores {_pct(oracle[fam]['accuracy'])}, while the same model reads one detail right "
        f"{_pct(oracle[f]['accuracy'])} of the time ({f}, chance {_pct(chance[f])}). "
        "The crops land and each detail is read; what fails is the verdict over two readings, "
        "which these models have not learned, so no better crop can raise this column"
    )


def _answered(row: str, r: dict, chance: float) -> str:
    """A row that leaves questions unanswered scores below chance for that alone: how many it answered, as a sentence
    that starts with a space ("" when it answered nearly all)."""
    share = r.get("answered", 1.0)
    if math.isnan(share) or share >= 0.95:
        return ""
    right = r["accuracy"] / share if share > 0 else math.nan
    return (
        f" {_name(row)} answers only {_pct(share)} of these questions (a crop call the environment refuses, or an "
        f"answer cut off, leaves none: invalid crops {_pct(r.get('invalid_crop_rate', math.nan))}); of those it "
        f"answers, {_pct(right)} are right"
        + (", still below chance (the reason above holds for them too)." if right < chance else ".")
    )


def _rgrpo_notes(rows: dict, fams) -> list[str]:
    notes = []
    if {"sft", "sft_rgrpo"} <= set(rows):
        parts, moved = [], False
        for f in [f for f in fams if f != "control" and f in rows["sft"]]:
            s, r = _acc(rows["sft"][f]), _acc(rows["sft_rgrpo"][f])
            moved |= _apart(s, r)
            parts.append(
                f"{f} {100 * (r[0] - s[0]):+.1f} points ({'intervals apart' if _apart(s, r) else 'intervals overlap'})"
            )
        s, r = rows["sft"]["all"], rows["sft_rgrpo"]["all"]
        moved |= _apart(*(_iou(x) for x in (s, r)))
        iou = f"crop IoU over every family {s['crop_iou']:.3f} → {r['crop_iou']:.3f}" + (
            " (intervals apart)" if _apart(*(_iou(x) for x in (s, r))) else " (intervals overlap)"
        )
        notes.append(
            f"**R-GRPO over SFT**: {', '.join(parts)}; {iou}"
            + (
                "."
                if moved
                else "; every interval overlaps, so this run cannot tell R-GRPO from SFT (too few "
                "steps or questions to measure a change this size)."
            )
        )
    if {"sft_rgrpo", "rgrpo_no_region"} <= set(rows):
        g, n = rows["sft_rgrpo"]["all"], rows["rgrpo_no_region"]["all"]
        pair = f"every family: {g['crop_iou']:.3f} with it, {n['crop_iou']:.3f} without"
        if not _apart(_iou(g), _iou(n)):
            notes.append(
                f"**With and without the region reward the crop IoU is the same within this run's noise** "
                f"({pair}, intervals overlapping): {WHY_NO_REGION}; intervals that overlap mean this run "
                "cannot tell the two apart."
            )
        elif g["crop_iou"] > n["crop_iou"]:
            notes.append(f"**The region reward raises the crop IoU** ({pair}, intervals apart): {WHY_NO_REGION}.")
        else:
            notes.append(
                f"**Without the region reward the crop IoU is higher** ({pair}, intervals apart): {WHY_NO_REGION}."
            )
    return notes


def _iou(r: dict) -> tuple[float, float, float]:
    v = r.get("crop_iou", math.nan)
    lo, hi = r.get("crop_iou_lo"), r.get("crop_iou_hi")
    return (v, v, v) if lo is None or hi is None or math.isnan(lo) else (v, lo, hi)
