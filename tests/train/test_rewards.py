import doctest

import pytest

import r3lab.train.rewards as R
from r3lab.core.crop_calls import CropCall, Verdict
from r3lab.core.trajectory import ENV, MODEL, CropEvent, Piece
from r3lab.testing import tiny_policy, toy_samples


def test_doctests():
    res = doctest.testmod(R)
    assert res.attempted >= 10 and res.failed == 0


@pytest.mark.parametrize(
    "got,answers,ok",
    [
        ("Yellow.", ["yellow"], 1.0),
        ("the yellow", ["yellow"], 1.0),
        ("three", ["3"], 1.0),
        ("gray", ["grey"], 1.0),
        ("blue", ["yellow", "blue"], 1.0),
        ("blue", "yellow/blue", 1.0),
        ("yellowish", ["yellow"], 0.0),
        ("no", ["yes"], 0.0),
        ("", ["yes"], 0.0),
    ],
)
def test_accuracy_normalises_and_accepts_alternatives(got, answers, ok):
    assert R.accuracy(None, [f"<think>x</think><answer>{got}</answer><|im_end|>"], [answers]) == [ok]


def test_accuracy_uses_the_last_answer_and_needs_a_tag():
    assert R.accuracy(None, ["<answer>red</answer> <answer>blue</answer>"], [["blue"]]) == [1.0]
    assert R.accuracy(None, ["the answer is blue"], [["blue"]]) == [0.0]  # no tag, no credit (no judge)


def _traj(answer="yellow", crop=True, refused=False):
    policy = tiny_policy()
    s = toy_samples(1, policy.view)[0]
    t = s.reference(policy.view, policy.prompt)
    if not crop:  # drop the crop call and the crop image
        t.pieces = t.pieces[:3] + [Piece(MODEL, "<think>It is clear.</think>"), t.pieces[-1]]
    if refused:
        t.pieces.insert(3, Piece(MODEL, '<think>{"bbox_2d": [500, 500, 600, 600]}'))
        t.pieces.insert(4, Piece(ENV, "\n(crop refused: the box lies outside the image)\n", tag="note"))
        t.events.append(CropEvent(CropCall(7, 40, "", Verdict.OUTSIDE), 3))
    last = t.pieces[-1]
    last.text = last.text.replace("<answer>yellow</answer>", f"<answer>{answer}</answer>")
    return t.tokenize(policy)


def test_score_gates_region_on_accuracy_and_sums_terms():
    right, wrong = _traj("yellow"), _traj("green")
    sc = R.score([right, wrong], "code")
    assert sc.raw["region"] == [1.0, 1.0]  # both made a well-formed crop call
    assert sc.terms["region"] == [0.5, 0.0]  # ... but only the correct one is paid
    assert sc.terms["accuracy"] == [1.0, 0.0]
    assert sc.terms["format"] == [0.5, 0.5]
    for i in range(2):
        assert sc.total[i] == pytest.approx(sum(v[i] for v in sc.terms.values()))
    assert right.meta["rewards"]["total"] == sc.total[0]
    table = sc.table(["right", "wrong"]).splitlines()
    assert table[0].startswith("| | accuracy | format | region | length | total |")
    assert table[3].startswith("| wrong | 0 |")
    assert sc.total[0] == pytest.approx(1 + 0.5 + 0.5 + 0.1 * min(1, sc.raw["length"][0]))


def test_paper_preset_weights_and_iou_term():
    t = _traj("yellow")
    sc = R.score([t], R.preset("paper", region_weight=2.0))
    assert sc.terms["format"] == [1.0] and sc.terms["region"] == [0.5]
    assert 0 < sc.terms["length"][0] <= 0.25
    iou = sc.raw["iou"][0]
    assert 0 < iou <= 1 and sc.terms["iou"] == [2.0 * iou]
    assert max(sc.total) <= 1 + 1 + 0.5 + 0.25 + 2.0


def test_region_valid_sees_refused_crops_and_iou_is_none_without_ground_truth():
    no_crop, refused = _traj(crop=False), _traj(crop=False, refused=True)
    sc = R.score([no_crop, refused], "paper")
    assert sc.raw["region"] == [0.0, 0.0]
    no_crop.gt_boxes = []
    sc = R.score([no_crop, refused], R.preset("accuracy", region_weight=1.0))
    assert sc.raw["iou"] == [None, 0.0]  # not applicable / no crop made
    assert sc.total[0] == sc.terms["accuracy"][0]  # None counts as 0 in the total
    assert sc.mean()["iou"] == 0.0


def test_trl_style_functions_drop_in_and_bad_terms_fail():
    def shorter_is_better(prompts, completions, **kw):
        return [1.0 / (1 + len(c)) for c in completions]

    t = _traj()
    sc = R.score([t], [R.RewardTerm("short", shorter_is_better, 10.0)])
    assert sc.total[0] == pytest.approx(10.0 / (1 + len(t.completion())))
    with pytest.raises(ValueError, match="preset"):
        R.preset("judge")
    with pytest.raises(ValueError, match="gated"):
        R.score([t], [R.RewardTerm("region", R.region_json, 0.5, gate="accuracy")])
    with pytest.raises(ValueError, match="returned 2 values"):
        R.score([t], [R.RewardTerm("bad", lambda p, c, **k: [0.0, 1.0])])
