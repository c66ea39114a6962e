"""The checks of lessons 40 and 45's exercises (explanations): each reads the student's records or summaries and
holds their answer to what those show."""

from __future__ import annotations

from ..core.settings import short
from .checks import checker, need


def _pointing(summary: dict, method: str) -> float:
    m = (summary or {}).get("methods", {}).get(method)
    need(
        m is not None and m.get("pointing_game") is not None,
        f"no pointing game for {short(method)} in this summary: pass `run.summary` of an explain run with that method",
    )
    return float(m["pointing_game"])


@checker("45.1")
def interval_by_hand(records, interval, method: str = "integrated_gradients") -> str:
    """A percentile bootstrap interval of a method's pointing game, computed by hand, against the library's."""
    from .evidence import faithfulness_intervals

    need(len(interval) == 2, "pass the interval as (lo, hi)")
    lo, hi = (float(x) for x in interval)
    ci = faithfulness_intervals(records, "attention", n_boot=4000, seed=1)["pointing_game"]["methods"]
    need(method in ci, f"no {short(method)} in these records' faithfulness: {', '.join(ci)}")
    mean, clo, chi = ci[method]
    need(
        lo <= mean <= hi,
        f"[{lo:.3f}, {hi:.3f}] does not hold the mean, {mean:.3f}: resample the crops, average "
        "each resample, then take the 2.5th and 97.5th percentiles of those averages",
    )
    need(
        abs(lo - clo) <= 0.07 and abs(hi - chi) <= 0.07,
        f"[{lo:.3f}, {hi:.3f}] is far from the percentile bootstrap's "
        f"interval (about [{clo:.2f}, {chi:.2f}]): resample with replacement, as many crops as there are",
    )
    return f"{method}'s pointing game {mean:.2f} [{lo:.2f}, {hi:.2f}]"


@checker("45.2")
def patching_cell_by_cell(summary_block1, summary, rises: bool) -> str:
    """Does patching's pointing game rise when every cell is patched alone? Read from the two summaries."""
    p1, p0 = _pointing(summary_block1, "patching"), _pointing(summary, "patching")
    n1, n0 = (s["methods"]["patching"].get("n") for s in (summary_block1, summary))
    need(n1 == n0, f"the summaries cover {n1} and {n0} crops: explain the same samples both times")
    need(
        summary_block1["methods"]["patching"] != summary["methods"]["patching"],
        "the two patching rows are identical: explain again with block=1 in WhyConfig",
    )
    need(bool(rises) == (p1 > p0), f"patching's pointing game went {p0:.2f} -> {p1:.2f}: look again")
    return f"patching's pointing game {p0:.2f} with blocks, {p1:.2f} cell by cell"


@checker("45.3")
def read_target(summary_read, method: str) -> str:
    """The method that points at the landmark most often when the maps explain the read."""
    scores = {
        m: v["pointing_game"]
        for m, v in (summary_read or {}).get("methods", {}).items()
        if m != "random" and v.get("pointing_game") is not None
    }
    need(bool(scores), "no pointing game in this summary: explain with faithfulness_target='read'")
    need(method in scores, f"{short(method)} is not one of the methods: {', '.join(scores)}")
    top = max(scores.values())
    need(
        scores[method] == top,
        f"{method} points at the landmark in {scores[method]:.0%} of the crops; another method does so in {top:.0%}",
    )
    return f"{method}: {top:.0%} of the crops (random: {_pointing(summary_read, 'random'):.0%})"


@checker("45.4")
def first_layer_attention(summary_layer0, above_random: bool) -> str:
    """Is the first layer's attention above the random map on the pointing game?"""
    att, rnd = _pointing(summary_layer0, "attention"), _pointing(summary_layer0, "random")
    need(
        bool(above_random) == (att > rnd),
        f"the first layer's attention hits the landmark in {att:.0%} of the "
        f"crops, the random map in {rnd:.0%}: look again",
    )
    return f"the first layer's attention {att:.0%}, the random map {rnd:.0%}"


@checker("40.1")
def attention_in_box(records_layer0, share_in_box: float) -> str:
    """The share of crop decisions whose attention's hottest cell lies in the written box, from the records."""
    from ..explain.faithfulness import pointing_game

    boxed = [r for r in records_layer0 if r.box is not None and r.map("attention", "box") is not None]
    need(bool(boxed), "no record with a box and an attention map: explain the trajectories again with layers='0'")
    truth = sum(pointing_game(r.map("attention", "box"), r.box, r.cell) for r in boxed) / len(boxed)
    need(
        abs(float(share_in_box) - truth) < 0.01,
        f"{float(share_in_box):.2f} is not the share in these records: count "
        "the records whose attention map's hottest cell lies inside r.box, over those with a box",
    )
    return f"attention's hottest cell in the box in {truth:.0%} of {len(boxed)} crop decisions"


@checker("40.2")
def top_cells_shared(record, both: int) -> str:
    """How many of the five cells integrated gradients ranks highest patching also ranks in its five."""
    maps = [record.map(m, "box") for m in ("integrated_gradients", "patching")]
    need(all(m is not None for m in maps), "this record lacks one of the maps: pass a record from section 1")
    tops = [set(m.reshape(-1).argsort(descending=True)[:5].tolist()) for m in maps]
    truth = len(tops[0] & tops[1])
    need(
        int(both) == truth,
        f"{int(both)} is not the overlap of the two top fives here: flatten each map, take the "
        "indices of its five largest values, and count the indices in both",
    )
    return f"{truth} of the five top cells shared"


@checker("40.3")
def family_losing_most(records, family: str) -> str:
    """The family whose read loses the most at the input when the crop is blank."""
    from ..explain.runs import mean_effects

    fams = sorted({r.family for r in records})
    drop = {f: mean_effects([r for r in records if r.family == f], "crop:blank", "read") for f in fams}
    drop = {f: v["effect"][0] for f, v in drop.items() if v["n"]}
    need(
        family in drop,
        f"{short(family)} has no blank-crop effect in these records; families with one: {', '.join(drop)}",
    )
    top = max(drop, key=drop.get)
    need(drop[family] >= drop[top], f"{family} loses {drop[family]:.2f} nats; {top} loses {drop[top]:.2f}")
    return ", ".join(f"{f} {v:+.2f}" for f, v in drop.items()) + " nats at the input"


@checker("40.4")
def coarse_share(records, share: float) -> str:
    """The coarse view's cost at the input as a share of the blank crop's."""
    from ..explain.runs import mean_effects

    blank, coarse = (mean_effects(records, f"crop:{k}", "read") for k in ("blank", "coarse"))
    need(
        blank["n"] and coarse["n"], "these records lack the blank or the coarse swap: explain with swaps including both"
    )
    truth = coarse["effect"][0] / blank["effect"][0]
    need(
        abs(float(share) - truth) < 0.02,
        f"{float(share):.2f} is not the coarse view's share here: divide its drop "
        "at the input (level 'input') by the blank crop's",
    )
    return f"the coarse view costs {truth:.0%} of what a blank crop costs"


@checker("60.1")
def relative_coordinates(box_absolute, box_relative, frame) -> str:
    """The relative call (0-1000 of each side) names the same crop as the absolute one, to the grid's rounding."""
    back = frame.from_relative(tuple(float(v) for v in box_relative))
    grid = max(frame.input_w, frame.input_h) / 1000 + 1
    off = max(abs(a - float(b)) for a, b in zip(back, box_absolute))
    need(
        off <= grid,
        f"{list(box_relative)} names input pixels {[round(v, 1) for v in back]}, {off:.1f} px from "
        f"{list(box_absolute)}: scale each x by 1000 / input_w and each y by 1000 / input_h",
    )
    return f"{list(box_relative)} (0-1000) is {list(box_absolute)} in input pixels, to {off:.1f} px"


@checker("60.2")
def refused_share(trajectories, share: float) -> str:
    """The share of crop calls the environment refused, over every call of the recorded rollouts."""
    events = [e for t in trajectories for e in t.events]
    need(bool(events), "these trajectories hold no crop call: pass recorder.trajectories of your run")
    truth = sum(not e.ok for e in events) / len(events)
    need(
        abs(float(share) - truth) < 0.01,
        f"{float(share):.2f} is not the refused share of these {len(events)} calls "
        "(count the events with e.ok False, over all events)",
    )
    return f"{truth:.0%} of {len(events)} calls refused"


@checker("60.3")
def iou_and_giou(quadrants, truth, iou, giou) -> str:
    """Each quadrant's IoU with the landmark and its (GIoU + 1) / 2 region reward."""
    from ..core.regions import box_giou, box_iou

    need(len(quadrants) == 4, "pass the image's four quadrant boxes (x1, y1, x2, y2)")
    need(len(quadrants) == len(iou) == len(giou), "one IoU and one GIoU reward per quadrant")
    for q, i, g in zip(quadrants, iou, giou):
        need(abs(float(i) - box_iou(truth, q)) < 1e-3, f"the IoU of {list(q)} with the landmark is not {float(i):.3f}")
        need(
            abs(float(g) - (box_giou(truth, q) + 1) / 2) < 1e-3,
            f"the region reward of {list(q)} is (GIoU + 1) / 2, not {float(g):.3f}",
        )
    return (
        "IoU "
        + ", ".join(f"{float(i):.2f}" for i in iou)
        + "; GIoU reward "
        + ", ".join(f"{float(g):.2f}" for g in giou)
    )


@checker("60.4")
def larger_group(results_json, group: int = 8) -> str:
    """benchmarks/trl.py ran with the larger group, on the same tokens, and r3lab's engine led."""
    import json
    from pathlib import Path

    path = Path(results_json)
    need(path.is_file(), f"{path} does not exist: run `python benchmarks/trl.py --group {group}` first")
    b = json.loads(path.read_text())
    need(
        b.get("setting", {}).get("group_size") == group,
        f"{path} was measured at G={b.get('setting', {}).get('group_size')}, not {group}: run it with --group {group}",
    )
    need(b["r3lab"]["model_tokens"] == b["trl"]["model_tokens"], "the two engines wrote different token counts")
    return f"r3lab / TRL {b['tokens_per_s_ratio']:.2f}x at G={group}"


_SAME = ("crop_rate", "crops", "crop_iou", "accuracy")


def _missing(v) -> bool:
    """Not measured: None, or NaN (a mean over no answers)."""
    return v is None or (isinstance(v, float) and v != v)


@checker("70.1")
def metrics_without_pixels(rows_without_images, rows_with_images) -> str:
    """The crop metrics read the boxes and answers, not the pixels: the same rows with or without images."""
    need(
        len(rows_without_images) == len(rows_with_images) > 0,
        "pass `crop_behaviour(...)` of the same run loaded both ways (load_images=False and True)",
    )
    for a, b in zip(rows_without_images, rows_with_images):
        for k in _SAME:
            x, y = a.get(k), b.get(k)
            need(
                x == y
                or (_missing(x) and _missing(y))
                or (isinstance(x, float) and isinstance(y, float) and abs(x - y) < 1e-9),
                f"step {a.get('step')}: {k} is {x} without images and {y} with them: are these the same run?",
            )
    return f"{len(rows_with_images)} steps: crop rate, IoU and accuracy identical without the pixels"


@checker("70.2")
def thresholds_flag_healthy(rows_healthy, config) -> str:
    """A CollapseConfig under which the healthy run is (wrongly) flagged."""
    from ..evaluation.behaviour import detect_collapse

    need(
        detect_collapse(rows_healthy)["collapsed"] is False,
        "these rows are flagged with the default thresholds already: pass the healthy run's rows",
    )
    verdict = detect_collapse(rows_healthy, config)
    need(
        verdict["collapsed"] is True,
        f"with {config} the healthy run is not flagged ({verdict['message']}): raise "
        "`floor` or `drop`, or shorten `window`",
    )
    return f"flagged with {config}: {verdict['message']}"


@checker("70.3")
def accuracy_with_a_crop_stops(rows, step: int) -> str:
    """The first step at which accuracy with a crop has no answers left to measure."""
    gone = [r["step"] for r in rows if _missing(r.get("accuracy_crop")) and r.get("crop_rate", 1) == 0]
    need(bool(gone), "in these rows accuracy with a crop is measured at every step: write the run with collapse=True")
    need(int(step) == gone[0], f"step {int(step)} is not the first without an answer that cropped")
    return f"from step {gone[0]} no answer crops, so accuracy with a crop has nothing to measure"


@checker("70.4")
def real_checkpoint(explained_real, explained_tiny, concentrates_more: bool) -> str:
    """Does the real checkpoint's attention concentrate in the box more than r3-tiny's? From the two explanations."""

    def mean(ex):
        vals = [e.attention.mass_in_box for exps in ex.values() for e in exps if e.ok and e.attention is not None]
        need(bool(vals), "an explanation without a crop that was cut: explain the run's cropped trajectories")
        return sum(vals) / len(vals)

    real, tiny = mean(explained_real), mean(explained_tiny)
    need(
        bool(concentrates_more) == (real > tiny),
        f"attention in the box: the checkpoint {real:.2f}, r3-tiny {tiny:.2f}: look again",
    )
    return f"attention in the box: the checkpoint {real:.2f}, r3-tiny {tiny:.2f}"
