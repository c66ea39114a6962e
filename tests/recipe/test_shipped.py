"""The shipped checkpoints do what the miniature promises: the card meets the replication targets, and the
crop is a magnifier (the real zoom adds information the coarse view of the same box lacked)."""

import json
import statistics

import pytest

import r3lab
from r3lab.core.env import assets_dir
from r3lab.data.world import WorldConfig
from r3lab.recipe.report import targets

SHIPPED = assets_dir() / "checkpoints"
CHANCE = {"read_one": 1 / len(WorldConfig().patterns), "compare_two": 0.5, "control": 0.5}


def _rows():
    return json.loads((SHIPPED / "card_results.json").read_text())["rows"]


def test_the_card_meets_the_replication_targets():
    rows = _rows()
    sft, rl, no_crop = rows["sft"], rows["sft_rgrpo"], rows["no_crop"]
    assert sft["read_one"]["n"] >= 1000 and sft["read_one"]["accuracy"] >= 0.70
    assert sft["all"]["crop_iou"] >= 0.5 and sft["read_one"]["contains_detail"] >= 0.8
    assert rl["read_one"]["accuracy"] > sft["read_one"]["accuracy"] and rl["all"]["crop_iou"] > sft["all"]["crop_iou"]
    apart = (
        rl["read_one"]["accuracy_lo"] > sft["read_one"]["accuracy_hi"]
        or rl["all"]["crop_iou_lo"] > sft["all"]["crop_iou_hi"]
    )
    assert apart, "the R-GRPO gain's 95% intervals overlap the SFT row's on both accuracy and IoU"
    for family in ("read_one", "compare_two"):  # no crop: the detail is out of reach
        assert abs(no_crop[family]["accuracy"] - CHANCE[family]) <= 0.10, (family, no_crop[family]["accuracy"])
    for row in (sft, rl):  # control: answered without a crop
        assert row["control"]["accuracy"] >= 0.90 and row["control"]["crop_rate"] <= 0.10


def test_the_card_meets_every_target_it_lists():
    """The card's targets table (`r3lab.recipe.report.targets`): SFT compare_two >= 85 %, R-GRPO's gain of
    5 points on read_one or the family with room, without the region reward no better, and the rest."""
    card = json.loads((SHIPPED / "card_results.json").read_text())
    missed = [(name, shown) for name, shown, met in targets(card) if met is not True]
    assert not missed, missed


@pytest.mark.slow
def test_the_shipped_sft_reads_from_the_zoom_not_from_the_coarse_view():
    """importance = log p(read | real zoom) - log p(read | the coarse view of the box, blown up): >= 1 nat on
    average and > 0.5 nats on at least 70 % of crops, for read_one and compare_two (100 held-out questions each:
    the share sits a few points above 70 %, and 16 questions measured it to within about 11 points)."""
    r3lab.configure_threads()
    policy = r3lab.load_policy(SHIPPED / "r3-tiny-sft")
    config = r3lab.WhyConfig.quick(importance_target="read", importance=("coarse",))
    for family in ("read_one", "compare_two"):
        samples = r3lab.build_samples(100, seed=424242, families=[family], view=policy.view, progress=False)
        res = r3lab.evaluate(policy, samples, r3lab.EvalConfig.for_policy(policy), progress=False)
        imps = [
            e.effect("coarse")
            for t in res.trajectories
            for e in r3lab.explain_crops(policy, t, config)
            if e.effect("coarse") is not None
        ]
        assert len(imps) >= 75, (family, len(imps))
        share = sum(x > 0.5 for x in imps) / len(imps)
        assert statistics.mean(imps) >= 1.0 and share >= 0.7, (family, statistics.mean(imps), share)


def test_the_shipped_sft_stopped_where_its_check_first_passed():
    """The SFT check ends the SFT at the first measurement with compare_two at its bar, so the shipped SFT is the
    shortest the check accepted (R-GRPO's room, notebook 30's start) and the card says how many steps it took."""
    card = json.loads((SHIPPED / "card_results.json").read_text())
    cfg, checks = card["config"], card["sft_checks"]
    assert checks and checks[-1]["compare_two"] >= cfg["sft_min"]
    assert all(r["compare_two"] < cfg["sft_min"] for r in checks[:-1])
    assert [r["steps"] for r in checks] == [cfg["sft_steps"] + k * cfg["sft_more"] for k in range(len(checks))]
    assert f"- after {checks[-1]['steps']} SFT steps: compare_two" in (SHIPPED / "MODEL_CARD.md").read_text()
    assert not (SHIPPED / "r3-tiny-sft-short").exists()  # notebook 30 starts from r3-tiny-sft itself
    if cfg.get("sft_read_rounds"):  # read_one learned last: its phases stop at the first check at its bar
        reads = card["sft_read_checks"]
        assert reads[0]["steps"] == 0 and reads[-1]["read_one"] >= cfg["sft_read_min"]
        assert len(reads) <= cfg["sft_read_rounds"] + 1
        assert all(r["read_one"] < cfg["sft_read_min"] for r in reads[:-1])
        assert [r["steps"] for r in reads] == [k * cfg["sft_read_more"] for k in range(len(reads))]
        assert (
            f"- after {reads[-1]['steps']} read_one steps: read_one {reads[-1]['read_one']} %"
            in (SHIPPED / "MODEL_CARD.md").read_text()
        )
