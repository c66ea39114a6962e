"""Reading a replication table: the statements its numbers support."""

from r3lab.recipe.reading import table_notes


def _row(acc, lo, hi, iou=0.5, iou_lo=0.45, iou_hi=0.55, crop_rate=1.0):
    fam = {"accuracy": acc, "accuracy_lo": lo, "accuracy_hi": hi, "crop_rate": crop_rate}
    return {
        "read_one": fam,
        "control": dict(fam, crop_rate=0.0),
        "all": {"crop_iou": iou, "crop_iou_lo": iou_lo, "crop_iou_hi": iou_hi, "contains_detail": 0.07},
    }


def test_notes_name_chance_below_chance_and_the_region_reward():
    rows = {
        "no_crop": _row(0.21, 0.17, 0.25, iou=float("nan"), iou_lo=float("nan"), iou_hi=float("nan")),
        "sft": _row(0.80, 0.76, 0.84, iou=0.60, iou_lo=0.58, iou_hi=0.62),
        "sft_rgrpo": _row(0.90, 0.87, 0.93, iou=0.70, iou_lo=0.68, iou_hi=0.72),
        "rgrpo_no_region": _row(0.91, 0.88, 0.94, iou=0.71, iou_lo=0.69, iou_hi=0.73),
        "oracle": _row(0.99, 0.98, 1.0),
        "random": _row(0.10, 0.07, 0.13),
    }
    for r in rows.values():  # every row guesses the control question
        r["control"].update(accuracy=0.5, accuracy_lo=0.45, accuracy_hi=0.55)
    notes = "\n".join(
        table_notes({"config": {"families": "read_one,control"}, "rows": rows}, {"read_one": 0.2, "control": 0.5})
    )
    assert "row (1) without crops: 21.0 %, at chance" in notes
    assert "(6) random crops: 10.0 %, below chance (20.0 %)" in notes
    assert "control: no row beats chance" in notes and "do not crop on it" in notes
    assert "read_one +10.0 points (intervals apart)" in notes and "0.600 → 0.700 (intervals apart)" in notes
    assert (
        "crop IoU is the same within this run's noise** "
        "(every family: 0.700 with it, 0.710 without, intervals overlapping)"
    ) in notes
    assert "cannot tell R-GRPO from SFT" not in notes  # read_one's intervals are apart
    # intervals apart either way, and an R-GRPO run that moved nothing measurably
    rows["rgrpo_no_region"]["all"].update(crop_iou=0.60, crop_iou_lo=0.58, crop_iou_hi=0.62)
    up = "\n".join(table_notes({"config": {"families": "read_one"}, "rows": rows}, {"read_one": 0.2}))
    assert (
        "**The region reward raises the crop IoU** (every family: 0.700 with it, 0.600 without, intervals apart)" in up
    )
    rows["rgrpo_no_region"]["all"].update(crop_iou=0.80, crop_iou_lo=0.78, crop_iou_hi=0.82)
    down = "\n".join(table_notes({"config": {"families": "read_one"}, "rows": rows}, {"read_one": 0.2}))
    assert (
        "**Without the region reward the crop IoU is higher** "
        "(every family: 0.700 with it, 0.800 without, intervals apart)"
    ) in down
    rows["sft_rgrpo"] = _row(0.79, 0.75, 0.83, iou=0.61, iou_lo=0.58, iou_hi=0.63)
    same = "\n".join(table_notes({"config": {"families": "read_one"}, "rows": rows}, {"read_one": 0.2}))
    assert "read_one -1.0 points (intervals overlap)" in same and "cannot tell R-GRPO from SFT" in same
    assert "read_one +19.0 points" in notes  # the oracle over SFT


def test_a_table_of_one_row_says_only_what_it_supports():
    rows = {"sft": _row(0.5, 0.4, 0.6)}
    notes = table_notes({"config": {"families": "read_one"}, "rows": rows}, {"read_one": 0.2})
    assert notes == []


def test_below_chance_without_crops_is_a_prior_not_a_reading():
    rows = {"no_crop": _row(0.10, 0.07, 0.13, crop_rate=0.0), "sft": _row(0.8, 0.7, 0.9)}
    notes = table_notes({"config": {"families": "read_one"}, "rows": rows}, {"read_one": 0.2})
    assert len(notes) == 1 and "below chance" in notes[0] and "answer prior" in notes[0]


def test_a_column_no_row_beats_says_why_when_the_oracle_row_tells():
    rows = {"sft": _row(0.9, 0.88, 0.92), "oracle": _row(0.99, 0.98, 1.0), "random": _row(0.2, 0.17, 0.23)}
    for name, (acc, lo, hi, answered) in {
        "sft": (0.52, 0.49, 0.55, 0.97),
        "oracle": (0.52, 0.49, 0.55, 1.0),
        "random": (0.24, 0.22, 0.27, 0.72),
    }.items():
        rows[name]["compare_two"] = {
            "accuracy": acc,
            "accuracy_lo": lo,
            "accuracy_hi": hi,
            "crop_rate": 1.0,
            "answered": answered,
            "invalid_crop_rate": 0.17,
            "contains_detail": 1.0,
        }
    notes = "\n".join(
        table_notes(
            {"config": {"families": "read_one,compare_two"}, "rows": rows}, {"read_one": 0.2, "compare_two": 0.5}
        )
    )
    assert "compare_two: no row beats chance" in notes
    assert "(5) oracle crops (GT), whose crops are the true regions" in notes and "scores 52.0 %" in notes
    assert "reads one detail right 99.0 % of the time (read_one" in notes and "verdict over two readings" in notes
    assert "(6) random crops answers only 72.0 %" in notes and "33.3 % are right, still below chance" in notes
    assert "(2) VLIR SFT answers only" not in notes  # 97 % answered is not the reason
