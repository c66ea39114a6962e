"""The checks of lesson 50's exercises (the replication table): each reads the student's evaluations or tables."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.settings import short
from .checks import checker, need


def _rows(result) -> dict:
    """An EvalResult's rows, or a results dict's / card's "rows"."""
    rows = getattr(result, "rows", None)
    if rows is None and isinstance(result, dict):
        rows = result.get("rows", result)
    need(isinstance(rows, dict), "pass an EvalResult (r3lab.evaluate) or a results dict (load_card(), recipe.run())")
    return rows


def _iou(rows: dict, fam: str = "all") -> tuple[float, float, float]:
    r = rows[fam]
    return r["crop_iou"], r.get("crop_iou_lo", r["crop_iou"]), r.get("crop_iou_hi", r["crop_iou"])


@checker("50.1")
def iou_without_region(sft_eval, tuned_eval, iou_moved: bool) -> str:
    """Does the crop IoU move beyond its interval after R-GRPO with the accuracy reward only?"""
    a, b = _iou(_rows(sft_eval)), _iou(_rows(tuned_eval))
    moved = b[1] > a[2] or b[2] < a[1]
    need(
        bool(iou_moved) == moved,
        f"the crop IoU went {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}] -> {b[0]:.3f} "
        f"[{b[1]:.3f}, {b[2]:.3f}]: do the intervals overlap?",
    )
    return f"crop IoU {a[0]:.3f} -> {b[0]:.3f}, " + ("the intervals apart" if moved else "within the intervals")


@checker("50.2")
def gain_in_numbers(card, read_gain: float, iou_change: float, oracle_gap: float) -> str:
    """The card's read_one numbers: R-GRPO's gain in points, its IoU change, and the oracle's gap in points."""
    rows = _rows(card)
    need({"sft", "sft_rgrpo", "oracle"} <= set(rows), "pass the card (load_card()) or a table with those rows")
    acc = {k: rows[k]["read_one"]["accuracy"] for k in ("sft", "sft_rgrpo", "oracle")}
    truth = {
        "read_gain": 100 * (acc["sft_rgrpo"] - acc["sft"]),
        "oracle_gap": 100 * (acc["oracle"] - acc["sft"]),
        "iou_change": rows["sft_rgrpo"]["read_one"]["crop_iou"] - rows["sft"]["read_one"]["crop_iou"],
    }
    said = {"read_gain": read_gain, "iou_change": iou_change, "oracle_gap": oracle_gap}
    for k, v in said.items():
        tol, unit = (
            (0.005, "an IoU difference, not points")
            if k == "iou_change"
            else (0.5, "in points: 100 x the difference of the read_one accuracies")
        )
        need(abs(float(v) - truth[k]) <= tol, f"{k} = {float(v):.3f} is off ({unit}); look at the rows again")
    return (
        f"R-GRPO +{truth['read_gain']:.1f} points with the IoU {truth['iou_change']:+.3f}; the oracle "
        f"{truth['oracle_gap']:+.1f} points: the gain is in reading"
    )


@checker("50.3")
def no_looking_again(with_crops, without_crops, lost_most: str) -> str:
    """The family that loses the most accuracy when no crop is executed."""
    a, b = _rows(with_crops), _rows(without_crops)
    need(b.get("all", {}).get("crop_rate", 1) == 0, "crops were still executed: evaluate with max_crops=0")
    fams = [f for f in a if f in b and f != "all"]
    loss = {f: a[f]["accuracy"] - b[f]["accuracy"] for f in fams}
    need(lost_most in loss, f"{short(lost_most)} is not one of the families evaluated: {', '.join(fams)}")
    top = max(loss, key=loss.get)
    need(
        loss[lost_most] >= loss[top] - 1e-9,
        f"{lost_most} lost {100 * loss[lost_most]:.0f} points; {top} lost {100 * loss[top]:.0f}",
    )
    return "points lost without crops: " + ", ".join(f"{f} {100 * v:.0f}" for f, v in loss.items())


@checker("50.4")
def kl_over_seeds(sweep, more_than_noise: bool, metric: str = "read_one.accuracy") -> str:
    """A sweep of beta x seeds (a folder or `load_sweep`'s Sweep): is the KL term's paired change of `metric` more
    than the seeds' noise (Holm-adjusted p < 0.05)?"""
    from ..sweep.results import Sweep, load_sweep

    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    found = [r for r in sw.summary() if r.metric == metric and r.comparison is not None]
    need(
        bool(found),
        f"the sweep holds no comparison of {metric}: sweep beta over two values with seeds, each run "
        "evaluated on the same held-out questions",
    )
    r = found[0]
    c, truth = r.comparison, r.comparison.p_holm < 0.05
    point = ", ".join(f"{k} {v}" for k, v in r.point.items())
    said = (
        f"{metric}, {point} against the baseline: {c.diff:+.3f} [{c.lo:+.3f}, {c.hi:+.3f}] over {c.seeds} seeds x "
        f"{c.questions} questions, Holm p {c.p_holm:.2f}"
    )
    need(bool(more_than_noise) == truth, f"{said}: does the interval hold 0, and is Holm's p below 0.05? Look again")
    return f"{said}: {'more than' if truth else 'within'} the seeds' noise"


@checker("50.5")
def longer_sft(results_json, card, taught: str) -> str:
    """Against the card: did longer SFT raise both rows (reading) or the SFT row toward the oracle (looking)?"""
    path = Path(results_json)
    need(path.is_file(), f"{path} does not exist: run the recipe command first (it writes results.json)")
    mine, theirs = _rows(json.loads(path.read_text())), _rows(card)
    need({"sft", "oracle"} <= set(mine), f"{path} lacks the sft and oracle rows: run with --rows sft,oracle")
    d_sft = mine["sft"]["read_one"]["accuracy"] - theirs["sft"]["read_one"]["accuracy"]
    d_oracle = mine["oracle"]["read_one"]["accuracy"] - theirs["oracle"]["read_one"]["accuracy"]
    truth = "looking" if d_sft - d_oracle > 0.05 else "reading"
    need(taught in ("reading", "looking"), "answer 'reading' or 'looking'")
    need(
        taught == truth,
        f"against the card, the SFT row moved {100 * d_sft:+.1f} points and the oracle row "
        f"{100 * d_oracle:+.1f}: look again",
    )
    return f"SFT {100 * d_sft:+.1f} points, oracle {100 * d_oracle:+.1f}: longer SFT taught {truth}"
