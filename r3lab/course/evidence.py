"""What a lesson's own run supports, with its uncertainty: bootstrap intervals and the sentences drawn from them.

Lesson 45 ranks explanation methods on a few dozen crops. A difference of a few hundredths is within chance there,
so each method's pointing game, deletion and insertion area gets a percentile bootstrap interval over the crops,
and each difference to a reference method (attention) a paired one (the same resampled crops for both). A
difference whose interval excludes 0 is a lead or a trail; the rest are ties, and `faithfulness_verdicts` says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

FIELDS = ("pointing_game", "deletion_auc", "insertion_auc")
BETTER = {"pointing_game": 1, "deletion_auc": -1, "insertion_auc": 1}  # the sign of "better"
LABEL = {"pointing_game": "pointing game", "deletion_auc": "deletion area", "insertion_auc": "insertion area"}


def _values(records: Sequence, methods: Sequence[str], field: str) -> np.ndarray:
    """(crops, methods) of one measure, over the crops where every method has it."""
    rows = []
    for r in records:
        f = r.faithfulness or {}
        vals = [(f.get(m) or {}).get(field) for m in methods]
        if all(v is not None for v in vals):
            rows.append([float(v) for v in vals])
    return np.asarray(rows, dtype=float).reshape(-1, len(methods))


def faithfulness_intervals(
    records: Sequence, reference: str = "attention", n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Per measure: each method's mean and interval (`methods[m] = (mean, lo, hi)`) and each method's paired
    difference to `reference` (`vs[m] = (mean, lo, hi)`, method minus reference), over `n` crops."""
    methods = sorted({m for r in records for m in (r.faithfulness or {})}, key=lambda m: (m == "random", m))
    if reference not in methods:
        raise ValueError(f"no {reference!r} in the records' faithfulness; methods: {', '.join(methods) or 'none'}")
    rng = np.random.default_rng(seed)
    q = ((1 - level) / 2 * 100, (1 + level) / 2 * 100)
    out = {"methods": methods, "reference": reference, "level": level}
    for field in FIELDS:
        v = _values(records, methods, field)
        if not len(v):
            out[field] = {"n": 0, "methods": {}, "vs": {}}
            continue
        idx = rng.integers(0, len(v), size=(n_boot, len(v)))
        boot = v[idx].mean(1)  # (n_boot, methods)
        ref = methods.index(reference)
        out[field] = {
            "n": len(v),
            "methods": {
                m: (float(v[:, j].mean()), *map(float, np.percentile(boot[:, j], q))) for j, m in enumerate(methods)
            },
            "vs": {
                m: (float((v[:, j] - v[:, ref]).mean()), *map(float, np.percentile(boot[:, j] - boot[:, ref], q)))
                for j, m in enumerate(methods)
                if m != reference
            },
        }
    return out


def standing(ci: dict, field: str, method: str) -> str:
    """How the reference method stands against `method` on `field`: "leads", "trails" or "ties" (the paired
    difference's interval excludes 0 on the better side, the worse side, or contains it)."""
    _, lo, hi = ci[field]["vs"][method]
    if lo <= 0 <= hi:
        return "ties"
    method_better = (lo > 0) == (BETTER[field] > 0)
    return "trails" if method_better else "leads"


def faithfulness_verdicts(ci: dict) -> dict[str, dict[str, str]]:
    """{measure: {method: "leads" | "ties" | "trails"}}: the reference method against each other one."""
    return {f: {m: standing(ci, f, m) for m in ci[f]["vs"]} for f in FIELDS if ci[f]["n"]}


def faithfulness_rows(ci: dict) -> list[dict]:
    """One row per method: each measure as "mean [lo, hi]" and the reference's standing against it."""
    rows = []
    for m in ci["methods"]:
        row = {"method": m}
        for f in FIELDS:
            if not ci[f]["n"]:
                continue
            mean, lo, hi = ci[f]["methods"][m]
            row[LABEL[f]] = f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
            if m != ci["reference"]:
                row[f"{ci['reference']} vs it ({LABEL[f]})"] = standing(ci, f, m)
        rows.append(row)
    return rows


def pair_rows(agree: dict) -> list[dict]:
    """`agreement`'s pairwise numbers as table rows ("a" / "b" columns: its keys join the names with '|')."""
    return [
        {
            "method": k.split("|")[0],
            "and": k.split("|")[1],
            "same hottest cell": v,
            "rank correlation": agree["rank_corr"][k],
        }
        for k, v in agree["same_top"].items()
    ]


def verdict_markdown(ci: dict) -> str:
    """One sentence per measure: where the reference method stands against each other method, with the paired
    difference and its interval (the method minus the reference; for deletion, lower is better)."""
    ref = ci["reference"]
    out = []
    for f in FIELDS:
        if not ci[f]["n"]:
            continue
        parts = []
        for m, (d, lo, hi) in ci[f]["vs"].items():
            parts.append(f"{standing(ci, f, m)} {m} ({m} − {ref}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}])")
        out.append(
            f"- **{LABEL[f]}** ({'lower' if BETTER[f] < 0 else 'higher'} is better), {ref} " + "; ".join(parts) + "."
        )
    return (
        f"On {ci['pointing_game']['n']} crops, {int(ci['level'] * 100)} % paired bootstrap intervals:\n\n"
        + "\n".join(out)
    )


def landmark_blocks(records: Sequence, block: int) -> float:
    """The mean number of patching blocks (`block` x `block` cells, on the cell grid) the named landmark overlaps: a
    landmark that straddles several blocks stays partly visible when any one of them is blanked."""
    counts = []
    for r in records:
        if r.landmark is None:
            continue
        side = r.cell * block
        x1, y1, x2, y2 = r.landmark
        cols = int((x2 - 1e-6) // side) - int(x1 // side) + 1
        rows = int((y2 - 1e-6) // side) - int(y1 // side) + 1
        counts.append(cols * rows)
    return float(np.mean(counts)) if counts else float("nan")


def miss_cells(record, method: str, target: str = "box") -> float:
    """How far `method`'s hottest cell (first of ties) lies from the named landmark, in cells (0: on it)."""
    m = np.asarray(record.map(method, target), dtype=float)
    row, col = divmod(int(m.reshape(-1).argmax()), m.shape[1])
    x, y = (col + 0.5) * record.cell, (row + 0.5) * record.cell  # the cell's centre, as the pointing game reads it
    x1, y1, x2, y2 = record.landmark
    return float(np.hypot(max(x1 - x, 0.0, x - x2), max(y1 - y, 0.0, y - y2)) / record.cell)


def clearest_miss(records: Sequence, method: str, target: str = "box"):
    """Of crops where `method` misses the landmark, the one whose hottest cell lies farthest from it: the miss a
    figure shows best (a cell just past the edge looks like a hit)."""
    return max(records, key=lambda r: miss_cells(r, method, target))


def _acc(rows: dict, row: str, fam: str) -> tuple[float, float, float]:
    r = rows[row][fam]
    return r["accuracy"], r.get("accuracy_lo", r["accuracy"]), r.get("accuracy_hi", r["accuracy"])


def _apart(a: tuple, b: tuple) -> bool:
    """Two (mean, lo, hi) intervals that do not overlap."""
    return a[2] < b[1] or b[2] < a[1]


def looking_and_reading(results: dict, family: str = "read_one") -> list[str]:
    """What a replication table (the card's or a run's) says about looking and reading on `family`: whether the
    SFT model's crops already hold the detail, what the oracle boxes add to it, and where R-GRPO's gain lies (crop
    IoU against accuracy, and the row without the region reward). Each sentence reads its numbers and intervals."""
    rows, out = results["rows"], []
    if "sft" not in rows or family not in rows["sft"]:
        return out
    sft = _acc(rows, "sft", family)
    s = rows["sft"][family]
    out.append(
        f"The SFT model crops on {s['crop_rate']:.0%} of the {family} questions and its {family} crops hold the "
        f"detail {s.get('contains_detail', float('nan')):.0%} of the time ({family} crop IoU "
        f"{s['crop_iou']:.2f}; the table's crop columns are over every family): it already looks in the right "
        "place."
    )
    if "oracle" in rows:
        ora = _acc(rows, "oracle", family)
        d = 100 * (ora[0] - sft[0])
        how = (
            "within the intervals"
            if not _apart(ora, sft)
            else f"{'above' if d > 0 else 'below'} it, the intervals apart"
        )
        out.append(
            f"Row (5), the same model given the true region for every crop it asks for, reads {ora[0]:.1%} "
            f"[{ora[1]:.1%}, {ora[2]:.1%}] against its own {sft[0]:.1%} [{sft[1]:.1%}, {sft[2]:.1%}] "
            f"({d:+.1f} points, {how}). Perfect boxes add "
            + (
                "little: the SFT model's misses are in *reading* the crop, not in looking. Row (5) is the oracle "
                "box for this model, not an upper bound on accuracy."
                if d < 5
                else "clearly: part of the SFT model's misses are in where it looks."
            )
        )
    if "sft_rgrpo" in rows:
        rg, r = _acc(rows, "sft_rgrpo", family), rows["sft_rgrpo"][family]
        out.append(
            f"SFT + R-GRPO reads {rg[0]:.1%} [{rg[1]:.1%}, {rg[2]:.1%}] ({100 * (rg[0] - sft[0]):+.1f} points) "
            f"while its {family} crop IoU moves {s['crop_iou']:.3f} → {r['crop_iou']:.3f}: the gain is in "
            "reading, not "
            "in looking; the crops were already on the detail."
            if rg[0] > sft[0]
            else f"SFT + R-GRPO reads {rg[0]:.1%} against the SFT model's {sft[0]:.1%}."
        )
        if "rgrpo_no_region" in rows:
            nr = _acc(rows, "rgrpo_no_region", family)
            out.append(
                f"Without the region reward R-GRPO reads {nr[0]:.1%} [{nr[1]:.1%}, {nr[2]:.1%}]"
                + (
                    ": the same within the intervals, so the region reward is not what moved accuracy."
                    if not _apart(nr, rg)
                    else "."
                )
            )
    if "sft_rgrpo" in rows and (stop := sft_stop(results, family)):
        out.append(
            f"How big R-GRPO's gain is depends on where SFT stopped: {stop} An SFT that already reads well "
            "leaves R-GRPO less room (the model card's limits)."
        )
    return out


def sft_stop(results: dict, family: str = "read_one") -> str:
    """Where the recipe's SFT stopped on `family`, from its checks: a floor (`sft_read.check.bar`, any recipe format)
    that added rounds while below it, and the round that passed it (by how much). "" where the results hold none."""
    bar = _sft_read_bar(results.get("config") or {})
    if not bar:
        return ""
    checks = [c for c in results.get("sft_read_checks") or [] if family in c]
    end = _acc(results["rows"], "sft", family)[0] if family in results["rows"].get("sft", {}) else None
    text = (
        f"the recipe trains {family} last, in rounds, while a held-out check reads it below a floor of "
        f"{bar:.0f} % (`sft_read.check.bar`)"
    )
    if len(checks) >= 2:
        text += (
            f"; it took {len(checks) - 1} rounds ({checks[-1]['steps'] - checks[0]['steps']} steps), the last "
            f"jumping from {checks[-2][family]:.0f} % to {checks[-1][family]:.0f} % on {checks[-1]['n']} "
            "questions"
        )
    return text + (
        "."
        if end is None
        else f", so the SFT row reads {end:.1%}: the floor is where training may stop, not where the model stopped."
    )


def _sft_read_bar(config: dict) -> float | None:
    """The bar the run's SFT held read_one to, read from its recipe in any format (None where it holds none)."""
    from ..recipe.paths import get_setting
    from ..recipe.recipe_format import read_settings

    if not config:  # results written without a recipe (an evaluation alone)
        return None
    try:
        return get_setting(read_settings(config, "the results' recipe"), "sft_read.check.bar")
    except (ValueError, KeyError, TypeError, StopIteration):
        return None
