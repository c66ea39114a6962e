"""Grounding samples: the question names landmarks, the answer is exactly their VLIR crop calls."""

import pytest

from r3lab.core.crop_calls import find_crop_calls
from r3lab.core.regions import Frame, ViewConfig
from r3lab.data.grounding import FAMILY, build_grounding, grounding_sample
from r3lab.data.world import region_input_box
from r3lab.testing import tiny_policy


def test_answer_is_the_crop_call_of_each_named_landmark():
    view = ViewConfig().with_factor(14)
    samples = build_grounding(40, seed=3, view=view, pairs=0.5, progress=False)
    assert {s.family for s in samples} == {FAMILY} and len({s.sample_id for s in samples}) == 40
    n_pairs = 0
    for s in samples:
        scene = s.image
        frame = Frame.of(scene.size, view)
        names = [lm.name for lm in scene.landmarks]
        named = [k for k, lm in enumerate(scene.landmarks) if lm.name in s.question]
        calls = find_crop_calls(s.rationale[0].text, frame)
        assert s.rationale[0].text.endswith("<|im_end|>") and all(c.ok for c in calls)
        assert len(calls) == len(s.regions) == len(named) in (1, 2)
        n_pairs += len(calls) == 2
        for call, region in zip(calls, s.regions):  # in the order the question names them
            k = next(j for j in range(len(names)) if scene.region(j) == region)
            assert tuple(call.box) == region_input_box(region, frame)
            assert names[k] in s.question
        if len(calls) == 2:
            first, second = (next(j for j in range(len(names)) if scene.region(j) == r) for r in s.regions)
            assert s.question.index(names[first]) < s.question.index(names[second])
    assert 10 < n_pairs < 30  # about half, as asked
    # a pure function of (seed, index)
    assert grounding_sample(3, 7, view=view, pairs=0.5).question == samples[7].question


def test_reference_trajectory_supervises_only_the_calls():
    p = tiny_policy()
    s = grounding_sample(0, 1, view=p.view)
    t = s.reference(p.view, p.prompt).tokenize(p)
    supervised = p.decode([i for i, m in zip(t.input_ids(), t.loss_mask().tolist()) if m])
    assert supervised == s.rationale[0].text and not t.crops


def test_closeups_open_the_named_landmarks_crop_and_supervise_only_the_detail():
    from r3lab.core.crop_calls import format_crop_call
    from r3lab.core.regions import box_contains
    from r3lab.data.grounding import CLOSEUP, build_base, closeup_sample

    p = tiny_policy()
    s = closeup_sample(2, 5, view=p.view)
    t = s.reference(p.view, p.prompt).tokenize(p)
    kinds = [q.kind for q in t.pieces]
    assert kinds[-3:] == ["env_text", "image", "model_text"] and s.family == CLOSEUP
    frame = Frame.of(s.image.size, p.view)
    box = region_input_box(s.regions[0], frame)
    assert t.pieces[-3].text.endswith(format_crop_call(box)) and tuple(t.crops[0].info.box_input) == box
    assert box_contains(t.crops[0].info.box_orig, s.details[0])  # the crop shows the mark
    supervised = p.decode([i for i, m in zip(t.input_ids(), t.loss_mask().tolist()) if m])
    assert supervised == s.answers[0] + "<|im_end|>"
    named = next(lm for lm in s.image.landmarks if lm.name in s.question)
    assert named.detail.kind == "pattern" and named.detail.shape == s.answers[0] and named.name in t.pieces[-3].text
    mix = build_base(60, seed=1, closeups=0.3, view=p.view, progress=False)
    n_close = sum(x.family == CLOSEUP for x in mix)
    assert 8 < n_close < 30 and {x.family for x in mix} == {CLOSEUP, FAMILY}
    assert [x.question for x in build_base(60, seed=1, closeups=0.3, view=p.view, progress=False)] == [
        x.question for x in mix
    ]  # a pure function of (seed, index)
    with pytest.raises(ValueError, match="closeups is a share"):
        build_base(4, closeups=1.5)


def test_comparisons_give_both_reads_and_supervise_only_the_verdict_and_answer():
    from r3lab.core.regions import box_contains
    from r3lab.data.grounding import CLOSEUP, COMPARISON, build_base, comparison_sample

    p = tiny_policy()
    verdicts = set()
    for i in range(6):
        s = comparison_sample(4, i, view=p.view, crops=i % 2 == 1)
        a, b = s.provenance["seen"]
        t = s.reference(p.view, p.prompt).tokenize(p)
        kinds = [q.kind for q in t.pieces]
        if i % 2:  # the SFT format: both crops in place
            assert kinds[-6:] == ["env_text", "image", "env_text", "image", "env_text", "model_text"]
            assert all(box_contains(c.info.box_orig, d) for c, d in zip(t.crops, s.details)) and len(t.crops) == 2
        else:
            assert kinds[-2:] == ["env_text", "model_text"] and not t.crops
        given = "".join(q.text for q in t.pieces if q.kind == "env_text" and q.tag == "given")
        said = t.pieces[-1].text
        assert given.startswith("<think>") and given.endswith(b) and f" {a}." in given  # both reads are given
        supervised = p.decode([i for i, m in zip(t.input_ids(), t.loss_mask().tolist()) if m])
        assert supervised == said and said.endswith(f"<answer>{s.answers[0]}</answer><|im_end|>")
        assert s.answers[0] == ("yes" if a == b else "no") and s.family == COMPARISON
        assert ("same" in said) == (a == b) and ("different" in said) == (a != b)
        verdicts.add(s.answers[0])
    assert verdicts == {"yes", "no"}
    old = build_base(60, seed=1, closeups=0.3, view=p.view, progress=False)
    mix = build_base(60, seed=1, closeups=0.3, view=p.view, progress=False, comparisons=0.5)
    assert 15 < sum(x.family == COMPARISON for x in mix) < 45
    # the other samples are those of the same index without comparisons
    assert all(x.question == y.question for x, y in zip(old, mix) if y.family in (CLOSEUP, "ground"))
    with pytest.raises(ValueError, match="comparisons is a share"):
        build_base(4, comparisons=-0.5)


def test_a_closeup_in_the_rationale_style_writes_the_conclusion_and_answer_sft_writes():
    from r3lab.data.grounding import CLOSEUP, build_base, closeup_sample

    p = tiny_policy()
    bare, full = (closeup_sample(3, 5, view=p.view, style=s) for s in ("answer", "rationale"))
    assert bare.rationale[-1].text == bare.answers[0] + "<|im_end|>"
    t = full.reference(p.view, p.prompt).tokenize(p)
    supervised = p.decode([i for i, m in zip(t.input_ids(), t.loss_mask().tolist()) if m])
    colour = full.answers[0]
    assert supervised.endswith(f" {colour}.</think><answer>{colour}</answer><|im_end|>") and "bbox_2d" not in supervised
    given = t.pieces[-3].text
    assert given.startswith("<think>") and given.rstrip().endswith("]}") and len(t.crops) == 1
    assert full.family == CLOSEUP and full.question == bare.question and full.regions == bare.regions
    mix = build_base(40, seed=2, closeups=1.0, view=p.view, progress=False, closeup_style="rationale")
    assert all(x.rationale[-1].text.endswith("</answer><|im_end|>") for x in mix)
    with pytest.raises(ValueError, match="style must be one of"):
        closeup_sample(3, 5, view=p.view, style="verdict")
