"""The audit after `evaluate`'s own rollout (`eval_audit`: keys per family with chance levels, questions), the
model-free audit of imported runs, attention vs box per crop, and the reproduction diff between two runs."""

import json
import math

import pytest

from r3lab.audit.audit import SETTINGS
from r3lab.audit.audit_run import eval_audit
from r3lab.audit.imported import audit_log, audit_with_policy
from r3lab.evaluation.evaluation import EvalConfig, evaluate
from r3lab.evaluation.questions import diff_runs, load_questions
from r3lab.explain.attention_box import CELLS, attention_box_counts, attention_vs_box
from r3lab.importers.traces import import_deepeyes_eval
from r3lab.testing import tiny_policy, toy_samples, toy_trajectory
from r3lab.testing.mini_runs import write_deepeyes_eval


@pytest.fixture(scope="module")
def policy():
    return tiny_policy()


@pytest.fixture(scope="module")
def audited(policy):
    samples = toy_samples(4, policy.view)
    cfg = EvalConfig(
        audit=True, necessity=True, rollout={"max_new_tokens": 16, "max_segment_tokens": 16}, audit_settings={"k": 2}
    )
    return samples, eval_audit(policy, samples, cfg, progress=False)


def test_evaluate_audit_writes_every_key_beside_its_chance_level(audited, tmp_path):
    samples, res = audited
    row = res.rows["read_one"]
    for s in SETTINGS:
        assert f"acc_{s}" in row and f"acc_{s}_chance" in row and f"acc_{s}_lo" in row
    for key in ("tool_only", "also_solved_without", "pass_at_k_no_crop", "acc_blank", "tool_gain"):
        assert key in row and (key.startswith(("acc_blank", "tool_gain")) or f"{key}_chance" in row)
    assert row["chance"] == 0.5  # two answers among the toy samples
    for s in ("own", *SETTINGS, "blank", "gt_box"):
        assert f"tokens_per_correct_{s}" in row and f"wall_s_per_correct_{s}" in row
    assert all(f"attn_box_{c}" in row for c in CELLS)
    assert len(res.questions) == 4 and set(res.questions[0]["settings"]) >= set(SETTINGS)
    assert len(res.questions[0]["settings"]["majority_no_crop"]["answers"]) == 2
    res.save(tmp_path)
    back = json.loads((tmp_path / "results.json").read_text())  # NaN is written as null: valid JSON
    assert "NaN" not in (tmp_path / "results.json").read_text() and back["rows"]["all"]["n"] == 4
    assert [q["sample_id"] for q in load_questions(tmp_path)] == [s.sample_id for s in samples]


def test_evaluate_refuses_the_audit_it_cannot_run_and_names_the_function_that_can(policy):
    with pytest.raises(ValueError, match=r"r3lab\.audit\.eval_audit\(policy, samples, config\)"):
        evaluate(policy, toy_samples(2, policy.view), EvalConfig(audit=True), progress=False)


def test_an_evaluation_without_the_audit_keeps_its_keys_and_still_writes_questions(policy, tmp_path):
    res = evaluate(policy, toy_samples(2, policy.view), EvalConfig(rollout={"max_new_tokens": 8}), progress=False)
    assert "acc_format_only" not in res.rows["all"] and res.questions == []  # nothing built until asked
    records = res.records()
    assert len(records) == 2 and records[0]["settings"] == {} and records[0]["own"]["correct"] in (True, False)
    res.save(tmp_path)
    assert len(load_questions(tmp_path)) == 2


def test_attention_vs_box_on_the_region_and_off_it(policy):
    (right,) = attention_vs_box(policy, toy_trajectory(policy, crop="disc"))
    (wrong,) = attention_vs_box(policy, toy_trajectory(policy, crop="square"))
    assert right.box_on_region and right.box_iou > 0.9 and not wrong.box_on_region
    assert 0 <= right.mass_in_region <= 1 and 0 < right.region_area < 1 and 0 < right.peak_chance < 1
    assert right.cell in CELLS and wrong.cell in ("attention_only", "neither")
    counts = attention_box_counts([right, wrong])
    assert counts["attn_box_n"] == 2 and sum(counts[f"attn_box_{c}"] for c in CELLS) == 2
    assert counts["box_on_region"] == 0.5
    no_region = toy_trajectory(policy)
    no_region.gt_boxes = []
    assert attention_vs_box(policy, no_region) == []
    with pytest.raises(ValueError, match="iou"):
        attention_vs_box(policy, toy_trajectory(policy), iou=0)


def test_an_imported_deepeyes_run_is_audited_from_its_logs_alone(tmp_path):
    path = write_deepeyes_eval(tmp_path / "de", n=4)
    trajs, _ = import_deepeyes_eval(path, image_root=path.parent / "images")
    res = audit_log(trajs)
    row = res.rows["all"]
    assert row["n"] == 4 and row["crop_rate"] > 0 and 0 <= row["accuracy"] <= 1
    assert row["crop_iou"] > 0.5 and row["box_on_region"] == 1.0  # the miniature run zooms on the annotated disc
    assert math.isnan(row["tokens"]) and row["chars_per_correct_own"] > 0  # text logs: no ids, characters instead
    assert len(res.questions) == 4 and res.questions[0]["own"]["crops"][0]["image"].startswith("data:image/png")


def test_an_imported_run_with_a_local_policy_gets_the_rest(policy, tmp_path):
    path = write_deepeyes_eval(tmp_path / "de", n=2)
    trajs, _ = import_deepeyes_eval(path, image_root=path.parent / "images", view=policy.view)
    from r3lab.engine.config import RolloutSettings

    res = audit_with_policy(policy, trajs, settings=RolloutSettings(max_new_tokens=8, temperature=0.0))
    row = res.rows["all"]
    assert "acc_format_only" in row and "tool_only" in row and "crop_iou" in row and row["attn_box_n"] >= 1


def test_diff_lists_the_questions_whose_correctness_differs():
    def rec(i, fam, ok):
        return {
            "sample_id": f"q{i}",
            "family": fam,
            "question": "?",
            "answers": ["a"],
            "own": {"answer": "a" if ok else "b", "correct": ok, "crops": []},
        }

    a = [rec(0, "x", True), rec(1, "x", False), rec(2, "y", True), rec(3, "y", True)]
    b = [rec(0, "x", False), rec(1, "x", True), rec(2, "y", True), rec(4, "y", True)]
    d = diff_runs(a, b)
    assert d["common"] == 3 and d["only_a"] == ["q3"] and d["only_b"] == ["q4"]
    assert [(c["sample_id"], c["change"]) for c in d["changed"]] == [("q0", "broken"), ("q1", "fixed")]
    assert d["families"]["x"] == {"n": 2, "fixed": 1, "broken": 1} and d["families"]["y"]["fixed"] == 0
    with pytest.raises(ValueError, match="twice"):
        diff_runs(a + [rec(0, "x", True)], b)


def test_the_settings_keep_no_pixels_and_the_model_own_rollout_keeps_its(policy):
    from r3lab.audit.audit_run import run_audit
    from r3lab.engine.config import RolloutConfig, RolloutSettings
    from r3lab.engine.rollouts import rollout

    samples = toy_samples(2, policy.view)
    own = rollout(policy, samples, RolloutConfig(greedy=True, max_new_tokens=8), group_size=1, progress=False)
    run = run_audit(policy, samples, own, RolloutSettings(max_new_tokens=8, temperature=0.0), necessity=True)
    # each setting held its own copy of every main image: a thousand questions per family would hold gigabytes
    assert all(
        p.image is None
        for k, ts in run.runs.items()
        if k != "own"
        for t in ts
        for tt in (t if isinstance(t, list) else [t])
        for p in tt.image_pieces
    )
    assert all(t.main.image is not None for t in run.runs["own"])


@pytest.mark.parametrize("fmt", ["vlm-r3", "verl", "trl"])
def test_every_importer_run_is_audited_from_its_logs(fmt, policy, tmp_path):
    from r3lab.audit.imported import load_trajectories
    from r3lab.testing.mini_runs import write_agent_loop, write_trl_completions, write_vlmr3_eval

    path = {
        "vlm-r3": lambda: write_vlmr3_eval(tmp_path, n=3),
        "verl": lambda: write_agent_loop(tmp_path, policy),
        "trl": lambda: write_trl_completions(tmp_path),
    }[fmt]()
    res = audit_log(load_trajectories(path, fmt, tokenizer=policy if fmt == "verl" else None))
    row = res.rows["all"]
    assert row["n"] == len(res.questions) > 0 and 0 <= row["crop_rate"] <= 1 and row["calls"] >= row["crops"]
    assert 0 <= row["accuracy"] <= 1 and row["chars_per_correct_own"] > 0
    if fmt == "verl":  # the log holds the model's token ids: its cost in tokens is known without a model
        assert row["tokens"] > 0 and row["tokens_per_correct_own"] > 0
    if fmt == "vlm-r3":  # the failed crop ("Invalid operation!") is a refused call
        assert row["refused_rate"] > 0
