"""The replication table, the stage times and the model card, from a results dict."""

import math

from r3lab.model.tiny import TinyConfig
from r3lab.recipe.recipe_config import RERUNNABLE, RecipeConfig
from r3lab.recipe.recipe_format import read_settings
from r3lab.recipe.report import (
    LABELS,
    NO_REGION,
    RGRPO_GAIN,
    families_of,
    markdown_table,
    model_card,
    stage_times,
    targets,
    targets_table,
)


def _row(acc, iou, crops, ctrl_rate, n=10):
    fam = {"n": n, "accuracy": acc, "accuracy_lo": acc - 0.1, "accuracy_hi": acc + 0.1, "crop_rate": 1.0}
    return {
        "read_one": dict(fam),
        "control": dict(fam, crop_rate=ctrl_rate),
        "all": {"crop_iou": iou, "crops": crops, "invalid_crop_rate": 0.05, "contains_detail": 0.9 if crops else None},
    }


RESULTS = {
    "config": {
        "families": "read_one,control",
        "tiny": {"patch_size": 7},
        "n_train": 8,
        "data_seed": 1,
        "n_eval": 10,
        "eval_seed": 999,
    },
    "rows": {"no_crop": _row(0.2, math.nan, 0.0, 0.0), "sft": _row(0.55, 0.4219, 1.0, 0.25)},
    "seconds": {"base": 60.0, "sft": 30.0},
}


def test_one_line_per_row_with_intervals_and_crop_behaviour():
    table = markdown_table(RESULTS)
    lines = table.splitlines()
    assert lines[0].startswith(
        "| model | read_one acc % [95% CI] | control acc % [95% CI] | crop IoU [95% CI] | crops on the detail % |"
    )
    assert lines[2] == "| (1) no crops | 20.0 [10.0, 30.0] | 20.0 [10.0, 30.0] | – | – | 0.00 | 0.0 | 5.0 |"
    assert lines[3] == "| (2) VLIR SFT | 55.0 [45.0, 65.0] | 55.0 [45.0, 65.0] | 0.422 | 90.0 | 1.00 | 25.0 | 5.0 |"
    assert "10 held-out samples per family" in table
    assert LABELS["oracle"] == "(5) oracle crops (GT)"


def test_families_follow_the_recipe_then_the_rows():
    assert families_of(RESULTS, None) == ["read_one", "control"]
    assert families_of(RESULTS, ["control"]) == ["control"]
    assert families_of({"rows": RESULTS["rows"]}, None) == ["read_one", "control"]


def test_stage_times_and_the_card():
    assert stage_times(RESULTS) == "- base: 60 s (1.0 min)\n- sft: 30 s (0.5 min)\n- sum of the stages: 90 s (1.5 min)"
    walled = dict(RESULTS, seconds={**RESULTS["seconds"], "wall": 75.0})
    assert stage_times(walled).endswith(
        "- sum of the stages: 90 s (1.5 min)\n"
        "- wall time of the whole run (stages two at a time after SFT): 75 s (1.2 min)"
    )
    card = model_card(RESULTS)
    assert card.startswith("# r3-tiny checkpoints") and markdown_table(RESULTS) in card
    assert stage_times(RESULTS) in card and '"patch_size": 7' in card
    assert "Qwen2_5_VLForConditionalGeneration" in card  # TinyConfig's default family
    assert str(TinyConfig().hidden) in card


def test_targets_say_met_missed_or_not_measured_from_the_numbers():
    met = {name: ok for name, _, ok in targets(RESULTS)}
    assert met["SFT read_one >= 70 %"] is False  # 55 %
    assert met["SFT crop IoU >= 0.5"] is False and met[">= 80 % of SFT crops hold the detail"] is True
    assert met["SFT control crop rate <= 10 %"] is False  # 25 %
    assert met["no-crop read_one <= 35 %"] is True  # 20 %
    assert met[NO_REGION] is None and met[RGRPO_GAIN] is None  # neither R-GRPO row was run
    rgrpo = RGRPO_GAIN
    good = dict(
        RESULTS,
        rows={**RESULTS["rows"], "sft_rgrpo": _row(0.8, 0.5, 1.0, 0.0), "rgrpo_no_region": _row(0.6, 0.45, 1.0, 0.0)},
    )
    met = {name: ok for name, _, ok in targets(good)}
    assert met[rgrpo] is True and met[NO_REGION] is True
    control = "control >= 90 % by SFT and by SFT + R-GRPO"
    assert met[control] is False and {name: ok for name, _, ok in targets(RESULTS)}[control] is None  # 55 / 80 %
    sure = dict(good, rows={k: {**v, "control": {**v["control"], "accuracy": 0.9}} for k, v in good["rows"].items()})
    assert {name: ok for name, _, ok in targets(sure)}[control] is True
    assert "| control >= 90 % by SFT and by SFT + R-GRPO | 90.0 % and 90.0 % | met |" in targets_table(sure)
    sharper = dict(good, rows={**good["rows"], "rgrpo_no_region": _row(0.6, 0.55, 1.0, 0.0)})
    assert {name: ok for name, _, ok in targets(sharper)}[NO_REGION] is False  # a higher IoU without the region reward
    close = dict(good, rows={**good["rows"], "sft_rgrpo": _row(0.7, 0.5, 1.0, 0.0)})  # intervals overlap (60 < 65)
    assert {name: ok for name, _, ok in targets(close)}[rgrpo] is False
    assert "| SFT read_one >= 70 % | 55.0 % | missed |" in targets_table(RESULTS)
    assert targets_table(RESULTS) in model_card(RESULTS)


def test_compare_two_counts_where_it_was_evaluated():
    def rows(sft, rgrpo, no_region):
        out = {}
        for name, (acc, cmp) in (("sft", sft), ("sft_rgrpo", rgrpo), ("rgrpo_no_region", no_region)):
            r = _row(acc, 0.5 if name == "sft" else 0.55, 1.0, 0.0)
            r["compare_two"] = {"n": 10, "accuracy": cmp, "accuracy_lo": cmp - 0.02, "accuracy_hi": cmp + 0.02}
            out[name] = r
        return out

    res = dict(RESULTS, config={**RESULTS["config"], "families": "read_one,compare_two,control"})

    def met(*r):
        return {n: ok for n, _, ok in targets(dict(res, rows=rows(*r)))}

    # read_one is at its ceiling (95 %): the gain is judged on compare_two, the family with room
    got = met((0.95, 0.85), (0.95, 0.92), (0.95, 0.88))
    assert got[RGRPO_GAIN] is True and got[NO_REGION] is True
    assert met((0.95, 0.85), (0.95, 0.89), (0.95, 0.90))[RGRPO_GAIN] is False  # +4 points only
    assert met((0.95, 0.85), (0.95, 0.89), (0.95, 0.90))[NO_REGION] is True  # 1 point more: inside the intervals
    assert met((0.95, 0.85), (0.95, 0.89), (0.95, 0.95))[NO_REGION] is False  # no region does better, intervals apart
    assert met((0.70, 0.95), (0.92, 0.95), (0.70, 0.95))[RGRPO_GAIN] is True  # read_one has the room here
    shown = {n: s for n, s, _ in targets(dict(res, rows=rows((0.95, 0.85), (0.95, 0.92), (0.95, 0.88))))}
    assert shown[RGRPO_GAIN].startswith("read_one 95.0 % vs 95.0 %")
    assert "compare_two 92.0 % vs 85.0 %" in shown[RGRPO_GAIN]


def test_iou_intervals_show_in_the_table_and_count_for_the_rgrpo_target():
    def with_iou(row, lo, hi):
        return dict(row, all=dict(row["all"], crop_iou_lo=lo, crop_iou_hi=hi))

    sft = with_iou(_row(0.75, 0.60, 1.0, 0.0), 0.58, 0.62)
    assert "| (2) VLIR SFT | 75.0 [65.0, 85.0] | 75.0 [65.0, 85.0] | 0.600 [0.580, 0.620] | 90.0 |" in markdown_table(
        dict(RESULTS, rows={"sft": sft})
    )

    def met(rgrpo):
        return {n: ok for n, _, ok in targets(dict(RESULTS, rows={"sft": sft, "sft_rgrpo": rgrpo}))}[RGRPO_GAIN]

    # +6 points on read_one, but the read_one intervals overlap (71 < 85): the IoU intervals decide
    assert met(with_iou(_row(0.81, 0.66, 1.0, 0.0), 0.64, 0.68)) is True  # IoU intervals apart (0.64 > 0.62)
    assert met(with_iou(_row(0.81, 0.63, 1.0, 0.0), 0.61, 0.65)) is False  # both pairs overlap
    assert met(with_iou(_row(0.78, 0.70, 1.0, 0.0), 0.68, 0.72)) is False  # IoU apart, but +3 points only
    assert met(with_iou(_row(0.81, 0.59, 1.0, 0.0), 0.59, 0.59)) is False  # a lower IoU
    assert met(_row(0.81, 0.66, 1.0, 0.0)) is False  # results without IoU intervals: read_one's overlap
    shown = {n: s for n, s, _ in targets(dict(RESULTS, rows={"sft": sft, "sft_rgrpo": _row(0.81, 0.66, 1.0, 0.0)}))}
    assert "nan" not in shown[RGRPO_GAIN] and "IoU 0.660 vs 0.600" in shown[RGRPO_GAIN]  # no interval to show
    rgrpo_row = with_iou(_row(0.81, 0.66, 1.0, 0.0), 0.64, 0.68)
    shown = {n: s for n, s, _ in targets(dict(RESULTS, rows={"sft": sft, "sft_rgrpo": rgrpo_row}))}
    assert "IoU 0.660 vs 0.600 (interval low 0.640 vs SFT high 0.620)" in shown[RGRPO_GAIN]


def test_the_card_lists_the_settings_that_made_the_run():
    import json
    from dataclasses import asdict

    def recipe_json(card):
        return json.loads(card.split("## Recipe")[1].split("```json\n")[1].split("\n```")[0])

    old = recipe_json(model_card(RESULTS))  # settings the results do not hold are not invented
    assert old == RESULTS["config"] and not set(old) & set(RERUNNABLE)
    assert "(its check off: nothing checked it)" in model_card(RESULTS)
    assert "| stage | phase |" not in model_card(RESULTS)  # no whole recipe: no curriculum invented for it
    new_cfg = {"format_version": 2, **asdict(RecipeConfig.from_settings(pairs_steps=500)), "parallel": 2}
    card = model_card(dict(RESULTS, config=new_cfg))
    assert recipe_json(card)["format_version"] == 2 and "parallel" not in recipe_json(card)
    assert "| base | pairs | grounding questions (50% name two), grounding world | 500 |" in card  # its curriculum
    assert "nothing checked it" not in card
    assert RecipeConfig.from_settings(**read_settings(recipe_json(card))) == RecipeConfig.from_settings(
        **{"pairs.steps": 500}
    )  # it runs
    flat = dict(
        RESULTS["config"],
        max_crops=2,
        max_new_tokens=128,
        rewards="code",
        iou_weight=1.0,
        region_reward="giou",
        rgrpo_temperature=0.7,
    )  # a card of the format before the settings were nested
    settings = recipe_json(model_card(dict(RESULTS, config=flat)))
    assert settings["train_rollout"]["temperature"] == 0.7 and settings["eval_rollout"]["max_segment_tokens"] == 64
    assert settings["reward"] == {"preset": "code", "region_weight": 1.0, "region": "giou"}
    for word in ("session", "until", "e2e"):
        assert word not in model_card(RESULTS)
