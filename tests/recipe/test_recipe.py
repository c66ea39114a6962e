import json
import math
import multiprocessing
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from r3lab.core import env
from r3lab.core.prompt import TINY_INSTRUCTION
from r3lab.core.regions import Frame, ViewConfig, box_iou
from r3lab.data.grounding import build_base, build_drill, comparison_sample
from r3lab.data.vlir import build_samples, image_size
from r3lab.data.world import region_input_box
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.evaluation.ablations import answer_only, oracle_boxes, random_boxes
from r3lab.evaluation.evaluation import bootstrap_ci
from r3lab.model.policy import load_policy
from r3lab.recipe import checks
from r3lab.recipe.checks import CheckError
from r3lab.recipe.format_1 import earlier_settings, to_flat
from r3lab.recipe.recipe import R3_TINY, ROWS, Recipe, RecipeConfig, run_recipe
from r3lab.recipe.recipe_config import RERUNNABLE, saved_recipe
from r3lab.recipe.recipe_format import read_settings
from r3lab.recipe.report import markdown_table, model_card
from r3lab.recipe.shipping import card_scores, ship, warm_start
from r3lab.testing import tiny_policy
from r3lab.viz.results import plot_table

recipe = RecipeConfig.from_settings  # the one door: fields, paths (and format 1's names)
SHIPPED = env.ASSETS / "checkpoints"


def flat(cfg: RecipeConfig) -> dict:
    """A recipe's settings in format 1 (flat names), as recipe.json held them before format 2."""
    return {
        **{k: v for k, v in saved_recipe(cfg).items() if k not in ("format_version", "base", "sft", "rgrpo")},
        **to_flat({k: asdict(getattr(cfg, k)) for k in ("base", "sft", "rgrpo")}),
    }


TINY = {  # every stage, a few steps, no phase but the first grounding and SFT ones, no check (today's paths)
    "n_train": 24,
    "n_eval": 3,
    "train_rollout": {"max_new_tokens": 24},
    "eval_rollout": {"max_new_tokens": 24},
    "view": {"crop_max_pixels": 98 * 98},
    "base.batch": 4,
    "sft.batch": 4,
    "ground.steps": 2,
    "ground.mix.samples": 24,
    "ground.check.n": 0,
    "pairs.steps": 0,
    "read_first.steps": 0,
    "read_focus.steps": 0,
    "read.steps": 0,
    "read.check.n": 0,
    "drill.steps": 0,
    "drill.check.n": 0,
    "compare.steps": 0,
    "compare.check.n": 0,
    "sft.steps": 2,
    "sft.mix.without": "",
    "sft.check.n": 0,
    "sft_read.check.n": 0,
    "rgrpo.steps": 1,
    "rgrpo.group_size": 2,
    "rgrpo.batch": 4,
}


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n():
    g = torch.Generator().manual_seed(0)
    small = (torch.rand(50, generator=g) < 0.7).float().tolist()
    big = (torch.rand(2000, generator=g) < 0.7).float().tolist()
    lo, hi = bootstrap_ci(small)
    assert lo <= sum(small) / 50 <= hi and 0.5 < lo < hi < 0.9
    blo, bhi = bootstrap_ci(big)
    assert bhi - blo < (hi - lo) / 3
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_answer_only_keeps_the_answer_and_drops_every_crop():
    s = next(x for x in build_samples(4, seed=2, progress=False) if x.family == "compare_two")
    p = tiny_policy()
    t = answer_only(s).reference(p.view, p.prompt)
    assert not t.crops and t.final_answer() == s.answer and s.reference(p.view, p.prompt).crops


def test_oracle_and_random_boxes_decide_where_the_crops_go():
    p = tiny_policy()
    samples = [s for s in build_samples(8, seed=5, progress=False) if s.family in ("read_one", "compare_two")]
    scripts = [[" look", ' {"bbox_2d": [1, 1, 20, 20]}', " again", ' {"bbox_2d": [2, 2, 30, 30]}', " ok"]] * len(
        samples
    )
    cfg = RolloutConfig(group_size=1, greedy=True, max_new_tokens=60, max_crops=2)
    oracle = rollout(p, samples, cfg, scripts=scripts, crop_boxes=oracle_boxes(p.view), progress=False)
    rand = rollout(p, samples, cfg, scripts=scripts, crop_boxes=random_boxes(p.view, 0), progress=False)
    again = rollout(p, samples, cfg, scripts=scripts, crop_boxes=random_boxes(p.view, 0), progress=False)
    for s, o, r, r2 in zip(samples, oracle, rand, again):
        fr = Frame.of(image_size(s), p.view)
        ref = s.reference(p.view).tokenize(p)
        n = len(ref.crops)  # past the ground truth's crops the model's own boxes are kept
        assert [c.info.box_input for c in o.crops[:n]] == [c.info.box_input for c in ref.crops]  # the VLIR crops
        for k, (x1, y1, x2, y2) in enumerate(s.regions):  # each oracle crop covers its ground-truth region
            cx1, cy1, cx2, cy2 = o.crops[k].info.box_orig
            assert cx1 <= x1 and cy1 <= y1 and cx2 >= x2 - 1 and cy2 >= y2 - 1
            assert box_iou(o.crops[k].info.box_orig, (x1, y1, x2, y2)) > 0.5
        W, H = fr.input_w, fr.input_h
        for c, gt in zip(r.crops, s.regions):
            x1, y1, x2, y2 = c.info.box_input
            gx1, gy1, gx2, gy2 = region_input_box(gt, fr)  # the size the oracle's box has, at another place
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            assert abs((x2 - x1) - (gx2 - gx1)) < 1e-6 and abs((y2 - y1) - (gy2 - gy1)) < 1e-6
        assert [c.info.box_input for c in r.crops] == [c.info.box_input for c in r2.crops]  # seeded


@pytest.mark.slow
def test_recipe_trains_every_stage_evaluates_every_row_and_resumes(tmp_path):
    out = tmp_path / "rc"
    res = run_recipe(recipe(out=str(out), **TINY), progress=False)
    assert list(res["rows"]) == list(ROWS)
    for row in ROWS:
        r = res["rows"][row]
        assert set(r) == {"read_one", "compare_two", "control", "all"} and r["read_one"]["n"] == 3
        assert r["all"]["accuracy_lo"] <= r["all"]["accuracy"] <= r["all"]["accuracy_hi"]
    assert res["rows"]["no_crop"]["all"]["crops"] == 0
    assert {"base", "sft", "no_crop", "rgrpo", "rgrpo_no_region", "wall"} <= set(res["seconds"])  # a run from nothing
    share = res["rows"]["oracle"]["read_one"]["contains_detail"]  # of crops holding the mark (NaN: none cropped)
    assert math.isnan(share) or 0 <= share <= 1
    sft = load_policy(out / "sft")  # the recipe's prompt and pixel budgets travel with every stage
    assert sft.prompt.instruction == TINY_INSTRUCTION and sft.prompt.question_first
    assert sft.view.crop_max_pixels == 98 * 98
    table = (out / "table.md").read_text()
    assert table.count("\n| (") == 6 and "read_one acc" in table
    # a second run reuses every stage and every evaluation
    files = [*(out / "base").iterdir(), *(out / "sft").iterdir(), *(out / "eval").iterdir()]
    before = {p: p.stat().st_mtime_ns for p in files}
    rec = Recipe(recipe(out=str(out), **TINY), progress=False)
    again = rec.run()
    assert rec._measured == {}  # nothing trained or evaluated again (nor a wall time: it resumed)
    same = json.dumps(res["rows"], sort_keys=True)  # (NaN IoUs compare unequal as floats)
    assert json.dumps(again["rows"], sort_keys=True) == same
    assert json.dumps(json.loads((out / "results.json").read_text())["rows"], sort_keys=True) == same
    assert before == {p: p.stat().st_mtime_ns for p in files}
    with pytest.raises(ValueError, match=r"sft\.steps: 2 there, 3 now.*another --out"):
        run_recipe(recipe(out=str(out), **{**TINY, "sft.steps": 3}), progress=False)
    with pytest.raises(ValueError, match="unknown rows"):
        _ = recipe(rows="sft,best").row_list


def _save_many_times(out, i, barrier):
    rec = Recipe(recipe(out=out, **TINY), progress=False)
    barrier.wait()  # every process writes at once
    for k in range(15):
        rec._save_times(f"job{i}_{k}", float(k))


@pytest.mark.skipif(sys.platform == "win32", reason="fork and flock are POSIX")
def test_parallel_jobs_lose_no_stage_time(tmp_path):
    # the recipe's jobs each merge their stage time into times.json; unlocked, a third or more were lost
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_save_many_times, args=(str(tmp_path), i, barrier)) for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 6
    times = json.loads((tmp_path / "times.json").read_text())
    assert times == {f"job{i}_{k}": float(k) for i in range(6) for k in range(15)}


def test_ship_then_warm_start_trains_nothing_shipped(tmp_path):
    out = tmp_path / "rc"
    # in this process: the job scheduler is test_recipe_trains_every_stage's
    run_recipe(
        recipe(
            out=str(out),
            rows="sft,sft_rgrpo",
            ship=str(tmp_path / "ship"),
            parallel=1,
            tiny={**R3_TINY, "patch_size": 14},
            **{**TINY, "ground.check.n": 4, "ground.check.bar": 0.0},
        ),
        progress=False,
    )
    config = json.loads((tmp_path / "ship" / "r3-tiny-sft" / "config.json").read_text())
    assert config["vision_config"]["patch_size"] == 14
    card = (tmp_path / "ship" / "MODEL_CARD.md").read_text()
    assert "(2) VLIR SFT" in card and "Wall time" in card and '"patch_size": 14' in card
    assert "- after 2 grounding steps: box centres on the named landmark" in card  # the check travels to the card
    meta = json.loads((tmp_path / "ship" / "card_results.json").read_text())
    assert set(meta["check"]) == {"r3-tiny-sft", "r3-tiny-rgrpo"}
    assert not {"out", "ship", "rows", "parallel"} & set(meta["config"]) and str(tmp_path) not in card  # no local path
    fresh = tmp_path / "fresh"
    assert warm_start(fresh, tmp_path / "ship") == ["base", "sft", "rgrpo"]
    for name in ("r3-tiny-base", "r3-tiny-sft", "r3-tiny-rgrpo"):  # eval settings travel with every checkpoint
        shipped = (tmp_path / "ship" / name / "r3lab.json").read_text()
        evaluation = json.loads(shipped)["meta"]["evaluation"]
        assert evaluation["rollout"] == asdict(recipe(**TINY).eval_rollout) and str(tmp_path) not in shipped
    rec = Recipe(recipe(out=str(fresh), rows="sft,oracle", parallel=1, **TINY), progress=False)
    res = rec.run()
    assert "sft" not in rec.times and "base" not in rec.times  # loaded, not retrained
    assert "stages base, sft, rgrpo: copied from" in res["provenance"]  # and the card would say so
    assert "## Provenance" in model_card(res) and "## Provenance" not in card


def test_table_and_figure_from_results():
    rows = {
        r: {
            f: {
                "n": 10,
                "accuracy": 0.5,
                "accuracy_lo": 0.2,
                "accuracy_hi": 0.8,
                "crop_rate": 0.1,
                "crops": 1.0,
                "crop_iou": 0.3,
                "invalid_crop_rate": 0.0,
            }
            for f in ("read_one", "control", "all")
        }
        for r in ("sft", "oracle")
    }
    res = {"config": {"families": "read_one,control"}, "rows": rows, "seconds": {"sft": 60.0}}
    table = markdown_table(res)
    assert "| (2) VLIR SFT | 50.0 [20.0, 80.0] | 50.0 [20.0, 80.0] | 0.300 | – | 1.00 | 10.0 | 0.0 |" in table
    fig = plot_table(res)
    assert len(fig.axes[0].patches) == 4 and len(fig.legends) == 1
    assert [p.get_height() for p in fig.axes[1].patches] == [0.3, 0.3]  # one IoU bar per row
    nocrop = {f: dict(v, crops=0.0, crop_iou=math.nan) for f, v in rows["sft"].items()}
    rows["sft"]["all"].update(crop_iou_lo=0.25, crop_iou_hi=0.35)
    fig = plot_table(dict(res, rows={"no_crop": nocrop, **rows}))
    assert len(fig.axes[0].patches) == 6 and [p.get_height() for p in fig.axes[1].patches] == [0.3, 0.3]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["(1)", "(2)", "(5)"]
    with pytest.raises(ValueError, match="no rows"):
        plot_table(dict(res, rows={}))


@pytest.mark.slow
def test_shipped_checkpoints_load_and_score_what_the_card_says():
    meta = json.loads((SHIPPED / "card_results.json").read_text())
    assert "| (3) SFT + R-GRPO |" in (SHIPPED / "MODEL_CARD.md").read_text()
    for name, expected in meta["check"].items():
        got = card_scores(SHIPPED / name, meta["config"])
        assert got["n"] == expected["n"]
        for k in ("accuracy", "crop_rate"):  # greedy on CPU; one flipped answer of n is tolerated
            assert abs(got[k] - expected[k]) <= 1 / expected["n"] + 1e-9, (name, k, got, expected)


def test_the_shipped_card_is_its_results_and_names_every_setting_of_its_recipe():
    card = json.loads((SHIPPED / "card_results.json").read_text())
    from r3lab.audit.audit_card import END, START, audit_block, load_audits

    text = (SHIPPED / "MODEL_CARD.md").read_text()
    written, block = text.split(START)  # the recipe writes the card; the audit of its checkpoints follows
    assert written == model_card(card) + "\n"  # the prose and the numbers agree
    assert START + block == audit_block(load_audits()) + "\n" and block.rstrip().endswith(END)
    # a card in format 1: its settings read into today's form, every field of it
    settings = read_settings(card["config"])
    assert set(settings) == {f for f in asdict(RecipeConfig()) if f not in RERUNNABLE}
    assert recipe(**settings).phase("pairs").steps == card["config"]["pairs_steps"]


def test_bad_settings_fail_before_any_training(tmp_path):
    for bad, match in [
        (dict(families="read_one,cats"), "unknown task families"),
        (dict(reward={"preset": "bogus"}), "bogus"),
        (dict(n_eval=0), "n_eval = 0"),
        (dict(group_size=3), "multiple of rgrpo.group_size = 3"),
        (dict(rows="sft,best"), "unknown rows"),
        (dict(view={"crop_max": 9}), "unknown ViewConfig fields"),
        (dict(world={"marks": 9}), "unknown WorldConfig fields"),
        (dict(base_closeups=2.0), r"ground\.mix\.closeups = 2\.0"),
        (dict(base_pairs=-0.1), r"ground\.mix\.pairs = "),
        (dict(pairs_share=1.2), r"pairs\.mix\.pairs = "),
        (dict(pairs_steps=-1), r"pairs\.steps = -1"),
        (dict(read_closeups=-0.1), r"read_first\.mix\.closeups = "),
        (dict(read_steps=-1), r"read\.steps = -1"),
        (dict(compare_share=1.5), r"compare\.mix\.comparisons = "),
        (dict(compare_steps=-2), r"compare\.steps = -2"),
        (dict(compare_closeups="bare"), r"compare\.mix\.style = 'bare' is not allowed"),
        (dict(base_batch=0), "batch = 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            recipe(out=str(tmp_path), **bad)
    assert recipe(families=" read_one, ,count ").families == "read_one,count"
    assert not any(tmp_path.iterdir())


def test_the_sft_check_adds_sft_phases_until_the_bar_then_names_the_fix(tmp_path):
    from r3lab.recipe.sft_check import SEED, measure

    CHECKS = checks.file_of("sft")
    cfg = dict(TINY, **{"sft.check.n": 2, "sft.check.bar": 100.0, "sft.check.more": 2, "sft.check.rounds": 1})
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 4 SFT steps .* sft\.check\.bar: 100.0 %.*--sft-rounds"):
        rec.train_stage("sft")  # a few steps from a 2-step base do not answer every comparison right
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"], r["n"]) for r in rows] == [(0, 2, 2), (1, 4, 2)]
    assert all(0 <= r[k] <= 100 for r in rows for k in ("read_one", "compare_two"))
    assert all(r["contains_detail"] is None or 0 <= r["contains_detail"] <= 100 for r in rows)
    assert not (tmp_path / "sft" / "config.json").exists()
    added = tmp_path / "logs" / "sft_sft1"
    before = (added / "log.jsonl").read_text()
    seeds = {json.loads(p.read_text())["config"]["seed"] for p in added.glob("step_*/state.json")}
    assert seeds == {RecipeConfig().seed + 100}  # the SFT's samples again, in another order
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "sft.check.bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the SFT is unfinished: allowed, the added phase kept
    rec.train_stage("sft")
    assert (added / "log.jsonl").read_text() == before and (tmp_path / "sft" / "config.json").is_file()
    assert len(json.loads((tmp_path / "logs" / CHECKS).read_text())) == 2  # measured again: passes at round 1
    rec.train_stage("no_crop")  # the ablation trains sft_steps, unchecked
    assert not (tmp_path / "logs" / "no_crop_sft1").exists()
    with pytest.raises(ValueError, match="other settings"):  # once the SFT is saved, its check is settled
        Recipe(recipe(out=str(tmp_path), **{**cfg, "sft.check.bar": 50.0}), progress=False)._check_config()
    caps = {
        **cfg,
        "sft.check.bar": 0.0,
        "sft.check.rounds": 5,
    }  # a larger cap: the saved stage passed within the smaller one
    Recipe(recipe(out=str(tmp_path), **caps), progress=False)._check_config()
    assert recipe(**read_settings(json.loads((tmp_path / "recipe.json").read_text()))).phase("sft").check.rounds == 5
    with pytest.raises(ValueError, match=r"sft\.check\.rounds: 5 there, 4 now"):  # a smaller one: it might not
        Recipe(recipe(out=str(tmp_path), **{**caps, "sft.check.rounds": 4}), progress=False)._check_config()
    policy = load_policy(tmp_path / "sft")
    m = measure(policy, recipe(**cfg).world_config(), recipe(**cfg).eval_config("sft"), n=2)
    assert (
        set(m) == {"n", "read_one", "compare_two", "crop_iou", "contains_detail", "control", "control_crop_rate"}
        and m["n"] == 2
    )
    assert all(0 <= m[k] <= 100 for k in ("control", "control_crop_rate"))  # measured, on control questions
    assert policy.model.training is False and SEED not in (RecipeConfig().data_seed, RecipeConfig().eval_seed)
    with pytest.raises(ValueError, match="n >= 1"):
        measure(policy, RecipeConfig().world_config(), RecipeConfig().eval_config("sft"), n=0)
    with pytest.raises(ValueError, match=r"sft\.check\.rounds = 5 adds phases .*\(--sft-more\)"):
        recipe(out=str(tmp_path), **{"sft.check.more": 0})
    old = earlier_settings(
        {
            k: v
            for k, v in flat(recipe(out=str(tmp_path))).items()
            if k not in ("sft_check", "sft_min", "sft_more", "sft_rounds")
        }
    )
    assert old["sft_check"] == 0  # earlier runs had none
    res = {"config": saved_recipe(recipe(out=str(tmp_path))), "rows": {}, "seconds": {}, "sft_checks": rows}
    card = model_card(res)
    assert "- after 4 SFT steps: compare_two " in card and f"control {rows[-1]['control']} % (" in card
    del rows[-1]["control"]  # a check from before control was measured: the line without it
    assert (
        "- after 4 SFT steps: compare_two " in model_card(res)
        and "control" not in model_card(res).split("- after 4 SFT steps")[1].split("\n")[0]
    )


def test_read_one_last_trains_without_it_then_adds_read_phases_until_its_bar(tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe_module

    CHECKS = checks.file_of("sft_read")
    seen, real = {}, recipe_module.train_sft

    def spy(policy, samples, cfg):
        seen[Path(cfg.out_dir).name] = ({s.family for s in samples}, cfg.steps, cfg.lr_lm, cfg.seed)
        return real(policy, samples, cfg)

    monkeypatch.setattr(recipe_module, "train_sft", spy)
    cfg = dict(
        TINY,
        n_train=30,
        **{
            "sft.mix.without": "read_one",
            "sft.check.n": 2,
            "sft_read.check.n": 2,
            "sft.check.bar": 0.0,
            "sft_read.check.rounds": 1,
            "sft_read.check.more": 3,
            "sft_read.check.bar": 100.0,
            "sft_read.lr": 2e-4,
        },
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 3 read_one steps .* sft_read\.check\.bar: 100.0 %.*--sft-read-rounds"):
        rec.train_stage("sft")  # three steps from a 2-step base do not answer every read_one question right
    assert seen["sft"] == ({"compare_two", "control"}, 2, 5e-4, 0)  # the first phase: no read_one samples
    assert seen["sft_sft_read1"] == ({"read_one", "compare_two", "control"}, 3, 2e-4, 200)  # then the whole mix
    sft_rows = json.loads((tmp_path / "logs" / "sft_checks.json").read_text())
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"]) for r in rows] == [(0, 0), (1, 3)]
    same = ("read_one", "compare_two", "control", "control_crop_rate")  # the very state: the last SFT check's row
    assert {k: rows[0][k] for k in same} == {k: sft_rows[-1][k] for k in same}
    assert set(rows[1]) == {"round", "steps", "n", "read_one"}  # below the bar: read_one alone, the bar's family
    assert not (tmp_path / "sft" / "config.json").exists()
    before = (tmp_path / "logs" / "sft_sft_read1" / "log.jsonl").read_text()
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "sft_read.check.bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the SFT is unfinished: allowed, the read phase kept
    rec.train_stage("sft")
    assert (tmp_path / "logs" / "sft_sft_read1" / "log.jsonl").read_text() == before  # resumed, not retrained
    assert (tmp_path / "sft" / "config.json").is_file()
    passed = json.loads((tmp_path / "logs" / CHECKS).read_text())[1]  # measured again: at the bar, the whole row
    assert passed["read_one"] == rows[1]["read_one"] and passed["control"] is not None and "compare_two" in passed
    rec.train_stage("no_crop")  # the ablation keeps the whole mix: it is measured on read_one too
    assert seen["no_crop"][0] == {"read_one", "compare_two", "control"}
    assert (
        earlier_settings({k: v for k, v in flat(RecipeConfig()).items() if not k.startswith("sft_read")})[
            "sft_read_rounds"
        ]
        == 0
    )
    with pytest.raises(ValueError, match=r"sft_read\.check\.rounds = 2 adds phases"):
        recipe(out=str(tmp_path), **{"sft_read.check.rounds": 2, "sft_read.check.more": 0})
    res = {
        "config": saved_recipe(recipe(out=str(tmp_path))),
        "rows": {},
        "seconds": {},
        "sft_read_checks": [rows[1], passed],
    }
    card = model_card(res)
    assert f"- after 3 read_one steps: read_one {rows[1]['read_one']} % of 2 held-out questions\n" in card
    assert (
        f"- after 3 read_one steps: read_one {passed['read_one']} %, compare_two {passed['compare_two']} %, "
        f"control {passed['control']} % ({passed['control_crop_rate']} % cropped)" in card
    )


def test_sft_mix_sets_the_sft_samples_shares_and_leaves_rgrpo_equal(tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe_module

    seen, real = {}, recipe_module.train_sft

    def spy(policy, samples, cfg):
        seen[Path(cfg.out_dir).name] = [s.family for s in samples]
        return real(policy, samples, cfg)

    monkeypatch.setattr(recipe_module, "train_sft", spy)
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "n_train": 12,
            "sft.mix.weights": {"compare_two": 2, "control": 0},
            "sft_read.mix.weights": {"compare_two": 2, "control": 0},
        },
    )
    rec = Recipe(cfg, progress=False)
    rec.train_stage("sft")
    fams = ["read_one", "compare_two", "control"]
    assert [seen["sft"].count(f) for f in fams] == [4, 8, 0]
    assert [s.family for s in rec.train_samples(ViewConfig())].count("control") == 4  # R-GRPO's: equal shares
    for bad in [{"cats": 1}, {"control": -1}, {"read_one": "2"}, dict.fromkeys(fams, 0)]:
        with pytest.raises(ValueError, match=r"sft\.mix|weight 0"):
            recipe(out=str(tmp_path / "x"), **{"sft.mix.weights": bad, "sft_read.mix.weights": bad})
    # a family the recipe does not train has no share to set (the default's compare_two here)
    assert recipe(families="read_one,control").phase("sft_read").mix.family_weights(["read_one", "control"]) == {}
    # compare_two weighs most by default; a folder written before the setting drew its families equally
    weights = RecipeConfig().phase("sft_read").mix.weights
    assert max(weights, key=weights.get) == "compare_two"
    old = earlier_settings({k: v for k, v in flat(recipe(out=str(tmp_path))).items() if k != "sft_mix"})
    assert old["sft_mix"] == {} and recipe(**read_settings(old)).phase("sft_read").mix.weights == {}


def test_rgrpo_stages_take_the_recipes_temperature_and_trained_groups(tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe_module

    seen = {}

    def spy(policy, samples, cfg):
        seen[Path(cfg.out_dir).name] = cfg
        return SimpleNamespace(last={"step": cfg.steps})

    monkeypatch.setattr(recipe_module, "train_rgrpo", spy)
    monkeypatch.setattr(recipe_module.Recipe, "model", lambda self, name: tiny_policy())
    for vision, temp in ((True, 0.7), (False, 1.0)):
        rec = Recipe(
            recipe(
                out=str(tmp_path / str(vision)),
                **{**TINY, "rgrpo.vision": vision, "train_rollout": {"temperature": temp}},
            ),
            progress=False,
        )
        rec._rgrpo("rgrpo")
        rec._rgrpo("rgrpo_no_region")
        for name in ("rgrpo", "rgrpo_no_region"):
            cfg = seen.pop(name)
            assert cfg.rollout.temperature == temp and cfg.freeze_vision == cfg.freeze_merger == (not vision)
            assert cfg.lr_vision == cfg.lr_merger == cfg.lr_lm == RecipeConfig().rgrpo.lr
    assert seen == {} and cfg.reward.region_weight == 0.0  # rgrpo_no_region: no region reward, the rest the same
    with pytest.raises(ValueError, match="train_rollout.temperature = 0 is not allowed"):
        recipe(out=str(tmp_path / "x"), train_rollout={"temperature": 0})


def test_rgrpo_mix_sets_both_rgrpo_stages_question_shares(tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe_module

    seen = {}

    def spy(policy, samples, cfg):
        seen[Path(cfg.out_dir).name] = [s.family for s in samples]
        return SimpleNamespace(last={"step": cfg.steps})

    monkeypatch.setattr(recipe_module, "train_rgrpo", spy)
    monkeypatch.setattr(recipe_module.Recipe, "model", lambda self, name: tiny_policy())
    cfg = recipe(out=str(tmp_path), **{**TINY, "n_train": 16, "rgrpo.mix": {"read_one": 2, "control": 0}})
    rec = Recipe(cfg, progress=False)
    for name in ("rgrpo", "rgrpo_no_region"):
        rec._rgrpo(name)
        assert [seen[name].count(f) for f in ("read_one", "compare_two", "control")] == [11, 5, 0]
    assert seen["rgrpo"] == seen["rgrpo_no_region"]  # both rows train on the same questions
    assert [s.family for s in rec.train_samples(ViewConfig())].count("control") > 0  # SFT's stay as they were
    for bad in [{"cats": 1}, {"read_one": -1}, ["read_one"], dict.fromkeys(("read_one", "compare_two", "control"), 0)]:
        with pytest.raises(ValueError, match="rgrpo.mix|RGRPOStage.mix"):
            recipe(out=str(tmp_path / "x"), **{"rgrpo.mix": bad})
    assert recipe(families="read_one,control", **{"rgrpo.mix": {"compare_two": 3}}).rgrpo_weights == {}


def test_the_read_phase_continues_the_base_on_mostly_close_ups(tmp_path):
    cfg = recipe(
        out=str(tmp_path), **{**TINY, "read.steps": 2, "read_first.mix.closeups": 1.0, "read.mix.closeups": 1.0}
    )
    rec = Recipe(cfg, progress=False)
    rec.train_stage("base")
    first = json.loads((tmp_path / "logs" / "base" / "log.jsonl").read_text().splitlines()[-1])
    read = [json.loads(x) for x in (tmp_path / "logs" / "base_read" / "log.jsonl").read_text().splitlines()]
    assert first["step"] == 2 and [r["step"] for r in read][-1] == 2  # both phases ran to the end
    saved = load_policy(tmp_path / "base").model.state_dict()
    one = Recipe(recipe(out=str(tmp_path / "one"), **TINY), progress=False)
    one.train_stage("base")  # the same first phase alone: the read phase moved the weights on from it
    alone = load_policy(tmp_path / "one" / "base").model.state_dict()
    assert any(not torch.equal(saved[k], alone[k]) for k in saved)


def test_the_comparison_phase_continues_the_read_phase(tmp_path):
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "read_first.steps": 1,
            "read_focus.steps": 3,
            "read.steps": 1,
            "compare.steps": 2,
            "compare.mix.comparisons": 1.0,
        },
    )
    rec = Recipe(cfg, progress=False)
    rec.train_stage("base")
    logs = {
        p: [json.loads(x) for x in (tmp_path / "logs" / p / "log.jsonl").read_text().splitlines()]
        for p in ("base", "base_read_first", "base_read_focus", "base_read", "base_compare")
    }
    assert [logs[p][-1]["step"] for p in logs] == [2, 1, 3, 1, 2]
    kinds = lambda data: {s.sample_id.split("-")[0] for s in data}  # noqa: E731
    from r3lab.recipe.phase_data import phase_samples

    c40 = recipe(**{**TINY, "read_focus.steps": 10, "read.steps": 10})
    focus, read = (phase_samples(Recipe(c40), "base", c40.phase(p), ViewConfig()) for p in ("read_focus", "read"))
    assert kinds(focus) == {"closeup", "control"} and kinds(read) == {"closeup", "control", "ground"}
    saved = load_policy(tmp_path / "base").model.state_dict()
    final = load_file(next((tmp_path / "logs" / "base_compare").glob("step_*")) / "model.safetensors")
    assert all(torch.equal(saved[k], final[k]) for k in saved if k in final)  # the base is the last phase's model
    # a folder made with other settings holds stages they made: not reused, the difference named
    old = flat(
        recipe(
            out=str(tmp_path / "old"),
            **{"compare.steps": 0, "drill.steps": 0, "drill.check.n": 0, "compare.check.n": 0},
        )
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "recipe.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"compare\.steps: 0 there, 300 now"):
        Recipe(recipe(out=str(tmp_path / "old")))._check_config()
    Recipe(
        recipe(
            out=str(tmp_path / "old"),
            **{"compare.steps": 0, "drill.steps": 0, "drill.check.n": 0, "compare.check.n": 0},
        )
    )._check_config()


def test_the_world_overrides_reach_every_sample_set(tmp_path):
    rec = Recipe(
        recipe(out=str(tmp_path), world={"pattern_size": 16}, n_train=6, n_eval=2, **{"sft.batch": 4}), progress=False
    )
    sides = {
        x2 - x1 for s in rec.train_samples(ViewConfig()) + rec.eval_samples(ViewConfig()) for x1, _, x2, _ in s.details
    }
    assert sides == {16}
    default = build_base(4, 1, closeups=1.0, progress=False)  # the default world's pattern tiles are 18 px
    assert {x2 - x1 for s in default for x1, _, x2, _ in s.details} == {18}


def test_a_recipe_folder_of_the_flat_format_is_read_and_a_missing_setting_refused(tmp_path):
    mine = flat(recipe(out=str(tmp_path)))
    flat1 = {k: v for k, v in mine.items() if k not in ("train_rollout", "eval_rollout", "reward")}
    flat1.update(
        max_crops=2, max_new_tokens=128, rgrpo_temperature=0.7, rewards="code", iou_weight=1.0, region_reward="giou"
    )  # how recipe.json held the rollout and reward settings before they were nested
    (tmp_path / "recipe.json").write_text(json.dumps(flat1))
    Recipe(recipe(out=str(tmp_path)))._check_config()  # the same settings: reused
    with pytest.raises(ValueError, match="eval_rollout"):
        Recipe(recipe(out=str(tmp_path), eval_rollout={"max_segment_tokens": 48}))._check_config()
    (tmp_path / "recipe.json").write_text(json.dumps({k: v for k, v in flat1.items() if k != "world"}))
    with pytest.raises(ValueError, match="world: None there, {} now; use another --out"):
        Recipe(recipe(out=str(tmp_path)))._check_config()


def test_ship_checks_every_stage_before_touching_the_destination(tmp_path):
    (tmp_path / "out" / "sft").mkdir(parents=True)
    (tmp_path / "out" / "sft" / "config.json").write_text("{}")
    dest = tmp_path / "dest" / "r3-tiny-sft"
    dest.mkdir(parents=True)
    (dest / "keep").write_text("shipped")
    with pytest.raises(FileNotFoundError, match="rgrpo holds no checkpoint.*sft,sft_rgrpo"):
        ship({"config": {}}, tmp_path / "out", tmp_path / "dest")
    assert (dest / "keep").read_text() == "shipped"


def test_stage_times_from_parallel_processes_merge(tmp_path):
    a, b = Recipe(recipe(out=str(tmp_path), **TINY)), Recipe(recipe(out=str(tmp_path), **TINY))
    a._save_times("sft", 10.0)
    b._save_times("no_crop", 5.0)
    a._save_times("eval_sft", 1.0)  # a's stale copy of the file must not drop b's entry
    assert json.loads((tmp_path / "times.json").read_text()) == {"sft": 10.0, "no_crop": 5.0, "eval_sft": 1.0}


def test_an_interrupted_stage_is_not_saved_as_finished(tmp_path):
    from r3lab.train.metrics import MetricLog

    class NoSave:
        def save(self, path):
            raise AssertionError("an interrupted stage must not be saved as finished")

    rec = Recipe(recipe(out=str(tmp_path), **TINY))
    with pytest.raises(KeyboardInterrupt, match="logs/sft"):
        rec._timed("sft", lambda: MetricLog([{"step": 1}]), NoSave(), 2)
    assert "sft" not in rec.times


def test_only_the_comparison_phase_takes_the_recipes_close_up_style(tmp_path, monkeypatch):
    import r3lab.recipe.phase_data as phase_data

    seen, real = [], phase_data.build_base

    def spy(*args, **kw):
        seen.append(kw.get("closeup_style", "answer"))
        return real(*args, **kw)

    monkeypatch.setattr(phase_data, "build_base", spy)  # every phase's
    cfg = recipe(out=str(tmp_path), **{**TINY, "read.steps": 1, "compare.steps": 1, "compare.mix.style": "rationale"})
    Recipe(cfg, progress=False).train_stage("base")
    assert seen == ["answer", "answer", "rationale"]  # grounding, read, comparison


def test_the_comparison_phases_draw_their_own_share_of_close_ups(tmp_path, monkeypatch):
    import r3lab.recipe.phase_data as phase_data

    seen, real = [], phase_data.build_base

    def spy(n, seed, closeups, *args, **kw):
        seen.append((closeups, kw.get("comparisons", 0.0)))
        return real(n, seed, closeups, *args, **kw)

    monkeypatch.setattr(phase_data, "build_base", spy)  # every phase's
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "read.steps": 1,
            "compare.steps": 1,
            "compare.mix.comparisons": 0.5,
            "read_first.mix.closeups": 0.75,
            "read.mix.closeups": 0.75,
            "compare.mix.closeups": 0.1,
            "compare.check.n": 2,
            "compare.check.bar": 100.0,
            "compare.check.ground_bar": 0.0,
            "compare.check.more": 1,
            "compare.check.rounds": 1,
        },
    )
    with pytest.raises(CheckError):
        Recipe(cfg, progress=False).train_stage("base")
    # grounding, read, comparison, the added comparison phase
    assert seen == [(0.0, 0.0), (0.75, 0.0), (0.1, 0.5), (0.1, 0.5)]
    with pytest.raises(ValueError, match=r"compare\.mix\.closeups"):
        recipe(out=str(tmp_path), **{"compare.mix.closeups": 1.5})
    old = earlier_settings(
        {
            k: v
            for k, v in flat(
                recipe(out=str(tmp_path), **{"read_first.mix.closeups": 0.6, "read.mix.closeups": 0.6})
            ).items()
            if k != "compare_closeup_share"
        }
    )
    assert old["compare_closeup_share"] == 0.6  # earlier folders drew the comparison phase as the read phase


def test_the_grounding_check_adds_phases_until_the_bar_then_names_the_fix(tmp_path):
    CHECKS = checks.file_of("ground")
    cfg = dict(
        TINY, **{"ground.check.n": 6, "ground.check.bar": 100.0, "ground.check.more": 2, "ground.check.rounds": 1}
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 4 grounding steps .* ground\.check\.bar: 100.0 %.*--ground-rounds"):
        rec.train_stage("base")  # a few untrained steps do not bind
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"]) for r in rows] == [(0, 2), (1, 4)]
    assert all(0 <= r["centre_on_named"] < 100 and r["valid"] >= 0 for r in rows)
    added = [json.loads(x) for x in (tmp_path / "logs" / "base_ground1" / "log.jsonl").read_text().splitlines()]
    assert added[-1]["step"] == 2 and not (tmp_path / "base" / "config.json").exists()  # no base saved below the bar
    # going on with a lower bar (allowed while the base is unfinished): the added phase is kept, not redone
    before = (tmp_path / "logs" / "base_ground1" / "log.jsonl").read_text()
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "ground.check.bar": 0.0}), progress=False)
    rec._check_config()
    rec.train_stage("base")
    assert (tmp_path / "logs" / "base_ground1" / "log.jsonl").read_text() == before
    saved = load_policy(tmp_path / "base").model.state_dict()
    final = load_file(next((tmp_path / "logs" / "base_ground1").glob("step_*")) / "model.safetensors")
    assert all(torch.equal(saved[k], final[k]) for k in saved if k in final)  # the base is the added phase's model
    assert [r["round"] for r in json.loads((tmp_path / "logs" / CHECKS).read_text())] == [0, 1]
    with pytest.raises(ValueError, match=r"ground\.check\.bar: 0.0 there, 50.0 now"):  # a saved base: settled
        Recipe(recipe(out=str(tmp_path), **{**cfg, "ground.check.bar": 50.0}))._check_config()
    with pytest.raises(ValueError, match=r"ground\.check\.rounds = 4 adds phases .*must be >= 1"):
        recipe(out=str(tmp_path), **{"ground.check.more": 0})
    with pytest.raises(
        ValueError,
        match=r"ground\.check\.bar = 120 is not allowed: "
        r"expected a finite number in \[0\.0, 100\.0\]",
    ):
        recipe(out=str(tmp_path), **{"ground.check.bar": 120})


def test_the_grounding_check_inside_the_phase_ends_it_when_bound_else_the_phase_goes_on_as_one_run(tmp_path):
    CHECKS = checks.file_of("ground")

    def log(out, phase="base"):
        return [json.loads(x) for x in (out / "logs" / phase / "log.jsonl").read_text().splitlines()]

    cfg = dict(
        TINY,
        **{
            "ground.mix.samples": 16,
            "ground.steps": 4,
            "ground.check.n": 4,
            "ground.check.early": 0.5,
            "ground.check.bar": 0.0,
            "ground.check.rounds": 0,
        },
    )
    bound = tmp_path / "bound"
    Recipe(recipe(out=str(bound), **cfg), progress=False).train_stage("base")
    assert [(r["round"], r["steps"]) for r in json.loads((bound / "logs" / CHECKS).read_text())] == [(-1, 2)]
    assert [r["step"] for r in log(bound)] == [2]  # the phase ended at its check, half-way along its schedule
    saved = load_policy(bound / "base").model.state_dict()
    at_check = load_file(bound / "logs" / "base" / "step_000002" / "model.safetensors")
    assert all(torch.equal(saved[k], at_check[k]) for k in saved if k in at_check)
    # below the bar there: the phase goes on to base_steps, the same run as one without the early check
    runs = {}
    for name, early in (("on", 0.5), ("plain", 0.0)):
        runs[name] = tmp_path / name
        rec = Recipe(
            recipe(out=str(runs[name]), **{**cfg, "ground.check.bar": 100.0, "ground.check.early": early}),
            progress=False,
        )
        with pytest.raises(CheckError, match=r"after 4 grounding steps"):
            rec.train_stage("base")
    rows = json.loads((runs["on"] / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"]) for r in rows] == [(-1, 2), (0, 4)]
    row = {n: [(r["step"], r["lr"], r["loss"]) for r in log(runs[n])] for n in runs}
    assert [r[0] for r in row["on"]] == [2, 4] and row["on"][-1] == row["plain"][-1]  # the same last step
    on, plain = (load_file(runs[n] / "logs" / "base" / "step_000004" / "model.safetensors") for n in ("on", "plain"))
    assert all(torch.equal(on[k], plain[k]) for k in plain)
    # going on with a lower bar: the phase that went on past the check is not cut back to it
    rec = Recipe(recipe(out=str(runs["on"]), **{**cfg, "ground.check.bar": 0.0}), progress=False)
    rec._check_config()
    rec.train_stage("base")
    assert [r["step"] for r in log(runs["on"])][-1] == 4
    rounds = json.loads((runs["on"] / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"]) for r in rounds] == [(-1, 2), (0, 4)]
    assert recipe(**{"ground.steps": 2000}).phase("ground").early_steps() == 0  # the default: at the phase's end only
    assert recipe(**{"ground.steps": 2000, "ground.check.early": 0.75}).phase("ground").early_steps() == 1500
    # any check may be taken inside its phase; with no check, none inside either
    assert recipe(**{"read.check.early": 0.5}).phase("read").early_steps() == 100
    assert recipe(**{"ground.steps": 2000, "ground.check.n": 0}).phase("ground").early_steps() == 0
    assert (
        earlier_settings({k: v for k, v in flat(RecipeConfig()).items() if k != "ground_early"})["ground_early"] == 0.0
    )
    with pytest.raises(
        ValueError, match=r"ground\.check\.early = 1\.0 is not allowed: expected a finite number in \[0"
    ):
        recipe(**{"ground.check.early": 1.0})


def test_the_read_check_adds_read_phases_until_the_bar_then_names_the_fix(tmp_path):
    from r3lab.recipe.read_check import read_accuracy

    CHECKS = checks.file_of("read")
    cfg = dict(
        TINY,
        **{
            "read_focus.steps": 1,
            "read.steps": 2,
            "read.check.n": 5,
            "read.check.bar": 100.0,
            "read.check.more": 2,
            "read.check.rounds": 1,
        },
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 5 read steps .* read\.check\.bar: 100.0 %.*--read-rounds"):
        rec.train_stage("base")  # a few untrained steps do not read
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())  # steps: the close-ups-only phase's too
    assert [(r["round"], r["steps"], r["n"], r["chance"]) for r in rows] == [(0, 3, 5, 20.0), (1, 5, 5, 20.0)]
    assert not (tmp_path / "base" / "config.json").exists()
    before = (tmp_path / "logs" / "base_read1" / "log.jsonl").read_text()
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "read.check.bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the base is unfinished: allowed, the added phase kept
    rec.train_stage("base")
    assert (tmp_path / "logs" / "base_read1" / "log.jsonl").read_text() == before
    assert (tmp_path / "base" / "config.json").is_file()
    policy = load_policy(tmp_path / "base")
    m = read_accuracy(policy, n=3)
    assert m["n"] == 3 and 0 <= m["read_accuracy"] <= 100 and policy.model.training is False
    with pytest.raises(ValueError, match="n >= 1"):
        read_accuracy(policy, n=0)
    with pytest.raises(ValueError, match=r"read\.check\.rounds = 6 adds phases"):
        recipe(out=str(tmp_path), **{"read.check.more": 0})
    old = earlier_settings(
        {
            k: v
            for k, v in flat(recipe(out=str(tmp_path))).items()
            if not k.startswith("read_") or k in ("read_steps", "read_closeups")
        }
    )
    assert old["read_check"] == 0 and not recipe(**read_settings(old)).phase("read").checked  # none then
    assert old["read_focus_steps"] == 0 and old["read_first_steps"] == 0
    res = {"config": saved_recipe(recipe(out=str(tmp_path))), "rows": {}, "seconds": {}, "read_checks": rows}
    assert "- after 5 read steps: " in model_card(res) and "(chance: 20.0 %)" in model_card(res)


def test_the_verdict_check_adds_comparison_phases_until_the_bar_then_names_the_fix(tmp_path):
    from r3lab.recipe.compare_check import flipped, verdict_accuracy

    CHECKS = checks.file_of("compare")
    cfg = dict(
        TINY,
        **{
            "read.steps": 1,
            "compare.steps": 2,
            "compare.mix.comparisons": 1.0,
            "compare.check.n": 20,
            "compare.check.bar": 100.0,
            "compare.check.ground_bar": 0.0,
            "compare.check.more": 2,
            "compare.check.rounds": 1,
        },
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 4 comparison steps .* compare\.check\.bar: 100.0 %.*--compare-rounds"):
        rec.train_stage("base")  # a few untrained steps do not judge every comparison right
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"], r["n"], r["chance"]) for r in rows] == [(0, 2, 20, 50.0), (1, 4, 20, 50.0)]
    assert not (tmp_path / "base" / "config.json").exists()
    before = (tmp_path / "logs" / "base_compare1" / "log.jsonl").read_text()
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "compare.check.bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the base is unfinished: allowed, the added phase kept
    rec.train_stage("base")
    assert (tmp_path / "logs" / "base_compare1" / "log.jsonl").read_text() == before
    policy = load_policy(tmp_path / "base")
    m = verdict_accuracy(policy, n=3)
    assert m["n"] == 3 and 0 <= m["verdict"] <= 100 and policy.model.training is False
    with pytest.raises(ValueError, match="n >= 1"):
        verdict_accuracy(policy, n=0)
    # the flipped twin: the opposite verdict and answer, in both endings' templates
    assert (
        flipped(", so they are the same.</think>\n<answer>yes</answer>")
        == ", so they are different.</think>\n<answer>no</answer>"
    )
    assert (
        flipped(": a different pattern.</think><answer>no</answer>")
        == " too: the same pattern.</think><answer>yes</answer>"
    )
    for i in range(6):  # every held-out ending has one verdict and one answer to flip
        ending = comparison_sample(30_000, i, view=ViewConfig(), crops=True).rationale[-1].text
        assert flipped(flipped(ending)) == ending != flipped(ending)
    with pytest.raises(ValueError, match="not a comparison's ending"):
        flipped("<answer>red</answer>")
    with pytest.raises(ValueError, match=r"compare\.check\.rounds = 4 adds phases"):
        recipe(out=str(tmp_path), **{"compare.check.more": 0})
    old = earlier_settings(
        {
            k: v
            for k, v in flat(recipe(out=str(tmp_path))).items()
            if k not in ("compare_check", "compare_min", "compare_more", "compare_rounds")
        }
    )
    assert old["compare_check"] == 0  # earlier runs had none
    res = {"config": saved_recipe(recipe(out=str(tmp_path))), "rows": {}, "seconds": {}, "compare_checks": rows}
    assert "- after 4 comparison steps: the true verdict preferred in " in model_card(res)


def test_the_verdict_check_holds_the_grounding_to_its_bar_too(tmp_path):
    CHECKS = checks.file_of("compare")
    cfg = dict(
        TINY,
        **{
            "read.steps": 1,
            "compare.steps": 2,
            "compare.mix.comparisons": 1.0,
            "compare.check.n": 4,
            "compare.check.bar": 0.0,
            "compare.check.ground_bar": 100.0,
            "compare.check.more": 2,
            "compare.check.rounds": 1,
        },
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(
        CheckError,
        match=r"after 4 comparison steps .*box centres.* compare\.check\.ground_bar: 100.0 %"
        r".*--compare-rounds",
    ):
        rec.train_stage("base")  # the verdict passes its bar of 0; an untrained policy's boxes do not
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"]) for r in rows] == [(0, 2), (1, 4)]
    assert all(0.0 <= r["centre_on_named"] < 100.0 for r in rows)
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "compare.check.ground_bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the base is unfinished: allowed, the added phase kept
    rec.train_stage("base")
    assert (tmp_path / "base" / "config.json").is_file()
    assert "centre_on_named" not in json.loads((tmp_path / "logs" / CHECKS).read_text())[-1]  # 0: not measured
    with pytest.raises(ValueError, match=r"compare\.check\.ground_bar = 101\.0"):
        recipe(out=str(tmp_path), **{"compare.check.ground_bar": 101.0})
    old = earlier_settings({k: v for k, v in flat(recipe(out=str(tmp_path))).items() if k != "compare_ground_min"})
    assert old["compare_ground_min"] == 0.0  # earlier folders measured the verdict alone
    res = {"config": saved_recipe(recipe(out=str(tmp_path))), "rows": {}, "seconds": {}, "compare_checks": rows}
    assert "; box centres on the named landmark in " in model_card(res)


def test_base_pairs_sets_the_two_landmark_questions_of_every_grounding_phase(tmp_path, monkeypatch):
    import r3lab.recipe.phase_data as phase_data

    built, real = [], phase_data.build_base

    def spy(*args, **kw):
        samples = real(*args, **kw)
        built.append(samples)
        return samples

    monkeypatch.setattr(phase_data, "build_base", spy)  # every phase's, the added ones too
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "ground.mix.closeups": 0.0,
            "ground.mix.pairs": 1.0,
            "ground.check.n": 2,
            "ground.check.bar": 100.0,
            "ground.check.more": 1,
            "ground.check.rounds": 1,
        },
    )
    with pytest.raises(CheckError):
        Recipe(cfg, progress=False).train_stage("base")
    assert len(built) == 2  # the grounding phase and the phase the check added
    assert all(len(s.regions) == 2 for samples in built for s in samples)  # each names two landmarks
    assert RecipeConfig().phase("ground").mix.pairs == 0.0


def test_the_pairs_phase_follows_the_check_with_two_landmark_questions(tmp_path, monkeypatch):
    import r3lab.recipe.phase_data as phase_data
    import r3lab.recipe.recipe as recipe_mod

    order, built = [], []
    real_build, real_train, real_take = phase_data.build_base, recipe_mod.train_sft, checks.take

    def build(*args, **kw):
        samples = real_build(*args, **kw)
        built.append(samples)
        return samples

    def train(policy, data, cfg):
        order.append(Path(cfg.out_dir).name)
        return real_train(policy, data, cfg)

    def take(*args, **kw):
        order.append("check")
        return real_take(*args, **kw)

    monkeypatch.setattr(phase_data, "build_base", build)
    monkeypatch.setattr(recipe_mod, "train_sft", train)
    monkeypatch.setattr(checks, "take", take)
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "pairs.steps": 2,
            "pairs.mix.pairs": 1.0,
            "drill.mix.pairs": 1.0,
            "read.steps": 1,
            "ground.check.n": 2,
            "ground.check.bar": 0.0,
        },
    )
    Recipe(cfg, progress=False).train_stage("base")
    assert order == ["base", "check", "base_pairs", "base_read"]  # after the check, before reading
    grounding, pairs, read = built
    assert all(len(s.regions) == 1 for s in grounding) and all(len(s.regions) == 2 for s in pairs)
    tile = cfg.world_config(base=True).pattern_size  # the grounding phase's world: its details are pattern tiles
    assert {x2 - x1 for s in pairs for x1, _, x2, _ in s.details} == {tile}
    log = [json.loads(x) for x in (tmp_path / "logs" / "base_pairs" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and RecipeConfig().phase("pairs").steps > 0


def test_the_verdict_drill_runs_before_the_comparison_phase_without_images(tmp_path):
    cfg = recipe(
        out=str(tmp_path),
        **{**TINY, "read.steps": 1, "drill.steps": 2, "compare.steps": 1, "compare.mix.comparisons": 1.0},
    )
    Recipe(cfg, progress=False).train_stage("base")
    logs = {
        p: [json.loads(x) for x in (tmp_path / "logs" / p / "log.jsonl").read_text().splitlines()]
        for p in ("base_read", "base_drill", "base_compare")
    }
    assert [logs[p][-1]["step"] for p in logs] == [1, 2, 1]
    # the language model alone: the vision tower and merger get no gradient without images (DDP refuses
    # parameters without one), so the drill freezes them
    read, drilled = (
        load_file(next((tmp_path / "logs" / p).glob("step_*")) / "model.safetensors")
        for p in ("base_read", "base_drill")
    )
    vision = [k for k in read if ".visual." in k or k.startswith("visual") or "model.visual" in k]
    assert vision and all(torch.equal(read[k], drilled[k]) for k in vision)
    assert any(not torch.equal(read[k], drilled[k]) for k in read if k not in vision)
    saved = json.loads((next((tmp_path / "logs" / "base_drill").glob("step_*")) / "state.json").read_text())["config"]
    assert saved["freeze_vision"] and saved["freeze_merger"]  # not only unchanged: left out of DDP's reduction
    drill = build_drill(3, 1, view=ViewConfig(), progress=False)
    traj = drill[0].reference(ViewConfig())
    assert not [p for p in traj.pieces if p.kind == "image"]  # no image: the language model alone
    assert [p.text for p in traj.pieces if p.kind == "model_text"] == [
        p.text for p in comparison_sample(18, 0, view=ViewConfig()).rationale if p.kind == "model_text"
    ]
    # with `reads`, the whole rationale is the model's (crop calls and both reads), its images dropped
    full = build_drill(3, 1, view=ViewConfig(), progress=False, reads=True)[0]
    ftraj = full.reference(ViewConfig())
    model_text = "".join(p.text for p in ftraj.pieces if p.kind == "model_text")
    assert not [p for p in ftraj.pieces if p.kind == "image"] and full.question == drill[0].question
    assert model_text.startswith("<think>") and model_text.count("bbox_2d") == 2
    assert model_text.endswith(traj.pieces[-1].text) and len(model_text) > len(traj.pieces[-1].text) + 40
    assert (
        RecipeConfig().phase("drill").mix.reads
        and not earlier_settings({k: v for k, v in flat(RecipeConfig()).items() if k != "compare_drill_reads"})[
            "compare_drill_reads"
        ]
    )
    # a folder written before the drill existed is read as one without it
    old = {k: v for k, v in flat(recipe(**{"drill.steps": 5})).items() if k != "compare_drill_steps"}
    assert earlier_settings(old)["compare_drill_steps"] == 0


def test_the_recipe_trains_in_micro_batches_of_similar_length():
    assert RecipeConfig().sft_config("sft", 10, 32, 1e-3).grad_accum == 2  # two per process: less padding
    assert RecipeConfig().sft_config("sft", 10, 5, 1e-3).grad_accum == 1  # an odd batch does not split


def test_the_drill_phases_keep_grounding_questions_with_their_images(tmp_path, monkeypatch):
    import r3lab.recipe.phase_data as phase_data

    plain = build_drill(40, 1, view=ViewConfig(), progress=False, reads=True)
    mixed = build_drill(40, 1, view=ViewConfig(), progress=False, reads=True, grounding=0.5, pairs=1.0)
    ground = [i for i, s in enumerate(mixed) if s.family == "ground"]
    assert 8 <= len(ground) <= 32  # about half, each drawn by index
    assert all(mixed[i].sample_id == plain[i].sample_id for i in range(40) if i not in ground)  # the others unchanged
    for i in ground:  # a grounding question keeps its image and writes both calls (pairs=1.0)
        traj = mixed[i].reference(ViewConfig())
        assert [p.kind for p in traj.pieces].count("image") == 1 and len(mixed[i].regions) == 2
        assert "".join(p.text for p in traj.pieces if p.kind == "model_text").count("bbox_2d") == 2
    assert not [
        p for i in range(40) if i not in ground for p in mixed[i].reference(ViewConfig()).pieces if p.kind == "image"
    ]
    assert not [s for s in build_drill(40, 1, view=ViewConfig(), progress=False, grounding=0.0) if s.family == "ground"]
    with pytest.raises(ValueError, match="grounding is a share"):
        build_drill(2, 1, view=ViewConfig(), progress=False, grounding=1.5)
    # the recipe's drill and its added drill phase both draw them, at its share and the pairs phase's pair share
    seen, real = [], phase_data.build_drill
    monkeypatch.setattr(phase_data, "build_drill", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    cfg = recipe(
        out=str(tmp_path),
        **{
            **TINY,
            "read.steps": 1,
            "drill.steps": 1,
            "compare.steps": 1,
            "drill.check.n": 2,
            "drill.check.bar": 100.0,
            "drill.check.more": 1,
            "drill.check.rounds": 1,
            "drill.mix.grounding": 0.5,
            "pairs.mix.pairs": 0.3,
            "drill.mix.pairs": 0.3,
        },
    )
    with pytest.raises(CheckError):
        Recipe(cfg, progress=False).train_stage("base")
    assert [(kw["grounding"], kw["pairs"]) for kw in seen] == [(0.5, 0.3), (0.5, 0.3)]
    with pytest.raises(ValueError, match=r"drill\.mix\.grounding"):
        recipe(out=str(tmp_path), **{"drill.mix.grounding": -0.1})
    old = earlier_settings({k: v for k, v in flat(recipe(out=str(tmp_path))).items() if k != "drill_ground_share"})
    assert old["drill_ground_share"] == 0.0  # earlier drills: text alone


def test_the_drill_check_adds_drill_phases_until_the_bar_then_names_the_fix(tmp_path):
    from r3lab.recipe.drill_check import text_verdict

    CHECKS = checks.file_of("drill")
    cfg = dict(
        TINY,
        **{
            "read.steps": 1,
            "drill.steps": 2,
            "compare.steps": 1,
            "compare.mix.comparisons": 1.0,
            "drill.check.n": 20,
            "drill.check.bar": 100.0,
            "drill.check.more": 2,
            "drill.check.rounds": 1,
        },
    )
    rec = Recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rec._check_config()
    with pytest.raises(CheckError, match=r"after 4 drill steps .* drill\.check\.bar: 100.0 %.*--drill-rounds"):
        rec.train_stage("base")  # a few untrained steps do not judge every comparison right
    rows = json.loads((tmp_path / "logs" / CHECKS).read_text())
    assert [(r["round"], r["steps"], r["n"], r["chance"]) for r in rows] == [(0, 2, 20, 50.0), (1, 4, 20, 50.0)]
    assert not (tmp_path / "logs" / "base_compare").exists()  # the comparison phase waits for the drill
    added = tmp_path / "logs" / "base_drill1"
    saved = json.loads((next(added.glob("step_*")) / "state.json").read_text())["config"]
    assert saved["freeze_vision"] and saved["freeze_merger"] and saved["lr_lm"] == RecipeConfig().phase("drill").lr
    before = (added / "log.jsonl").read_text()
    rec = Recipe(recipe(out=str(tmp_path), **{**cfg, "drill.check.bar": 0.0}), progress=False)
    rec._check_config()  # a lower bar while the base is unfinished: allowed, the added phase kept
    rec.train_stage("base")
    assert (added / "log.jsonl").read_text() == before
    lines = (tmp_path / "logs" / "base_compare" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines][-1] == 1
    policy = load_policy(tmp_path / "base")
    m = text_verdict(policy, n=3)
    assert m["n"] == 3 and 0 <= m["text_verdict"] <= 100 and policy.model.training is False
    with pytest.raises(ValueError, match="n >= 1"):
        text_verdict(policy, n=0)
    with pytest.raises(ValueError, match=r"drill\.check\.rounds = 6 adds phases"):
        recipe(out=str(tmp_path), **{"drill.check.more": 0})
    old = earlier_settings(
        {
            k: v
            for k, v in flat(recipe(out=str(tmp_path))).items()
            if k not in ("drill_check", "drill_min", "drill_more", "drill_rounds")
        }
    )
    assert old["drill_check"] == 0 and not recipe(**read_settings(old)).phase("drill").checked
    res = {"config": saved_recipe(recipe(out=str(tmp_path))), "rows": {}, "seconds": {}, "drill_checks": rows}
    assert "- after 4 drill steps: the true verdict preferred in " in model_card(res)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="torchrun's gloo ranks on a POSIX machine")
def test_the_sft_checks_of_a_two_rank_sft_stage_run_on_both_ranks(tmp_path):
    # the base and SFT stages run as two DDP ranks (`parallel=2`); their SFT checks deal the held-out questions out
    # over both, and both ranks take the same decision: one check failing its bar twice stops both with the fix
    cfg = dict(
        TINY,
        rows="sft",
        parallel=2,
        **{
            "sft.mix.without": "read_one",
            "sft.check.n": 2,
            "sft_read.check.n": 2,
            "sft.check.bar": 100.0,
            "sft.check.more": 2,
            "sft.check.rounds": 1,
            "sft_read.check.rounds": 1,
            "sft_read.check.more": 2,
            "sft_read.check.bar": 0.0,
        },
    )
    with pytest.raises(CheckError, match=r"^stage sft: after 4 SFT steps .*--sft-rounds"):  # the job's own error
        run_recipe(recipe(out=str(tmp_path), **cfg), progress=False)
    rows = json.loads((tmp_path / "logs" / "sft_checks.json").read_text())
    assert [(r["round"], r["steps"], r["n"]) for r in rows] == [(0, 2, 2), (1, 4, 2)]
    # a lower bar goes on from the saved phases; read_one last starts from the check's own last row (rank 0's
    # file, broadcast), so neither rank measures again before the first read phase
    res = run_recipe(recipe(out=str(tmp_path), **{**cfg, "sft.check.bar": 0.0}), progress=False)
    assert (tmp_path / "sft" / "config.json").is_file() and set(res["rows"]) == {"sft"}
    reads = json.loads((tmp_path / "logs" / "sft_read_checks.json").read_text())
    assert [(r["round"], r["steps"]) for r in reads] == [(0, 0)]
    assert reads[0]["read_one"] == json.loads((tmp_path / "logs" / "sft_checks.json").read_text())[-1]["read_one"]
