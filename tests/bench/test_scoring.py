"""The benchmarks' own scoring rules, checked by hand on small cases (lmms-eval / VLMEvalKit behaviour, quirks
included)."""

import math

import pytest

from r3lab.bench.scoring import (
    answer_text,
    best_overlap_iou,
    cycle_accuracy,
    letter_can_infer,
    letter_regex,
    letter_vstar,
    score_item,
    treebench_boxes,
    treebench_iou,
)


def test_the_answer_comes_from_the_first_complete_answer_tags_else_the_whole_response():
    assert answer_text("<think>maybe (A)</think><answer> B </answer> <answer>C</answer><|im_end|>") == "B"
    assert answer_text("The answer is C.<|im_end|>") == "The answer is C."
    assert answer_text("<answer>unclosed") == "<answer>unclosed"  # VLMEvalKit needs the closing tag


VSTAR = [
    ("A", "A"),
    ("(B)", "B"),
    ("c.", "C"),
    ("The answer is b", "B"),
    ("I think it is C here", "C"),
    # lmms-eval's first pattern reads a leading A-D as the letter (faithful, quirks included):
    ("blue", "B"),
    ("Answer: D", "A"),
    ("white", None),
    ("", None),
]
REGEX = [
    ("The best answer is (C)", "C"),
    ("E", "E"),
    ("b", "B"),
    ("(D) the car", "D"),
    ("(d) the car", ""),
    ("one two three four five six seven eight nine ten eleven", ""),  # > 10 words, no letter A-E
    ("", "A"),
]  # VLMEvalKit's quirk: "" is contained in "(a)"; score_item marks it answered=False
CAN_INFER = [
    ("B", "B"),
    ("The answer is B.", "B"),
    ("It is blue.", "B"),
    ("A or B", None),
    ("red or blue", None),
    ("Cannot determine the answer", "Z"),
    ("B is wrong, it is obviously not what we see here at all", None),
]


def test_vstar_letters_follow_lmms_eval():
    assert [letter_vstar(t) for t, _ in VSTAR] == [want for _, want in VSTAR]


def test_mme_realworld_and_treebench_letters_follow_vlmevalkit():
    assert [letter_regex(t) for t, _ in REGEX] == [want for _, want in REGEX]


def test_hrbench_letters_follow_vlmevalkit_exact_matching():
    opts = {"A": "red", "B": "blue", "C": "green", "D": "yellow"}
    assert [letter_can_infer(t, opts) for t, _ in CAN_INFER] == [want for _, want in CAN_INFER]


def test_treebench_reads_integer_boxes_in_the_reasoning_only():
    resp = (
        "<think>cup <box>[10,20,50,60]</box> <box>[1, 2, 3, 4]</box> <box>[9,9,5,5]</box></think>"
        "<answer>A</answer> <box>[0,0,9,9]</box>"
    )
    assert treebench_boxes(resp) == [(10, 20, 50, 60)]  # spaces, inverted boxes and boxes after </think> do not count
    assert treebench_boxes("<box>[0,0,9,9]</box>") == [(0, 0, 9, 9)]  # no <think>: the whole response


def test_treebench_matching_takes_the_best_box_per_target_and_averages_over_targets():
    targets = [(0, 0, 10, 10), (20, 0, 30, 10)]
    resp = "<think><box>[0,0,10,20]</box> and <box>[20,0,30,10]</box> <box>[0,0,30,10]</box></think>"
    # target 1: IoU 0.5 with [0,0,10,20] (100 / 200), 1/3 with [0,0,30,10]; target 2: 1.0 -> (0.5 + 1) / 2
    assert treebench_iou(resp, targets) == pytest.approx(0.75)
    assert treebench_iou("<think>no box</think>", targets) == 0.0
    assert treebench_iou("<think><box>[1,1,5,5]</box></think>", []) == 1.0  # VLMEvalKit: boxes but no target
    assert best_overlap_iou([], targets) == 0.0


def test_cycle_accuracy_averages_within_cycles_then_over_them():
    hits = {
        0: [("single", 1), ("single", 1), ("cross", 0)],
        1: [("single", 0), ("cross", 1), ("cross", 1)],
        2: [("single", 1), ("cross", 1)],
    }
    items = [{"cycle_category": c, "category": cat, "hit": h} for c, rows in hits.items() for cat, h in rows]
    got = cycle_accuracy(items)
    assert got["all"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)  # 7/9, while the per-item accuracy is 6/8
    assert got["single"] == pytest.approx(2 / 3) and got["cross"] == pytest.approx(2 / 3)
    assert list(got)[0] == "all"


def test_score_item_uses_each_benchmarks_extractor():
    prov = {"options": {"A": "red", "B": "blue", "C": "green", "D": "white"}, "answer": "B"}
    assert score_item("vstar", "<answer>B. blue</answer>", prov)["hit"] == 1
    assert score_item("hrbench4k", "<answer>blue</answer>", prov)["hit"] == 1  # option text matched
    assert score_item("mme-realworld", "<answer>The best answer is (B)</answer>", prov)["hit"] == 1
    tb = score_item("treebench", "<think><box>[0,0,10,10]</box></think><answer>A</answer>", prov, [(0, 0, 10, 10)])
    assert tb["hit"] == 0 and tb["box_iou"] == 1.0 and tb["pred"] == "A"
    empty = score_item("mme-realworld", "", {**prov, "answer": "A"})
    assert empty["hit"] == 1 and not empty["answered"]  # faithful to VLMEvalKit, and visible in the record
    assert math.isnan(score_item("vstar", "nothing", prov).get("box_iou", math.nan))
