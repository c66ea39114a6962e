"""VLIR quality filters: planted bad samples are removed with the reason, good ones kept; corrupt() trips each."""

import copy

import pytest

from r3lab.core.crop_calls import find_crop_calls, format_crop_call
from r3lab.core.regions import Frame, ViewConfig
from r3lab.core.trajectory import IMAGE
from r3lab.data.filters import CORRUPTIONS, FilterConfig, check_sample, corrupt, filter_samples
from r3lab.data.vlir import build_samples, image_size

VIEW = ViewConfig()


@pytest.fixture(scope="module")
def samples():
    return build_samples(16, seed=0, progress=False)


def _edit_crop(s, k, box):
    """A copy whose k-th crop (call text and image piece) is moved to `box`."""
    s = copy.deepcopy(s)
    idx = [i for i, p in enumerate(s.rationale) if p.kind == IMAGE][k]
    prev = s.rationale[idx - 1]
    call = find_crop_calls(prev.text)[-1]
    prev.text = prev.text[: call.start] + format_crop_call(box) + prev.text[call.end :]
    s.rationale[idx].info.box_input = tuple(box)
    s.sample_id += "-bad"
    return s


def test_filters_remove_planted_bad_samples_and_keep_good_ones(samples):
    good = samples[:8]
    read = next(s for s in good if s.family == "read_one")
    comp = next(s for s in good if s.family == "compare_two")
    ctrl = next(s for s in good if s.family == "control")
    frame = Frame.of(image_size(read), VIEW)
    # region validity: the crop lands on another landmark / on empty canvas
    b = read.rationale[1].info.box_input
    off = (b[0] + 40, b[1] + 40, b[2] + 40, b[3] + 40) if b[2] + 40 <= frame.input_w else (0, 0, 6, 6)
    miss = _edit_crop(read, 0, off)
    # non-redundancy: the second crop repeats the first; and a crop of (nearly) the whole image
    twice = _edit_crop(comp, 1, comp.rationale[1].info.box_input)
    twice.regions, twice.details = [comp.regions[0]] * 2, [comp.details[0]] * 2
    whole = _edit_crop(read, 0, (0, 0, frame.input_w, frame.input_h))
    # coherence: the conclusion states another colour; the answer tag disagrees with the answers
    wrong = copy.deepcopy(read)
    wrong.sample_id += "-says-other"
    other = "purple" if read.answer != "purple" else "brown"
    wrong.rationale[-1].text = wrong.rationale[-1].text.replace(read.answer, other, 1)
    bad_tag = copy.deepcopy(ctrl)
    bad_tag.sample_id += "-tag"
    bad_tag.rationale[-1].text = bad_tag.rationale[-1].text.replace(f"<answer>{ctrl.answer}<", "<answer>zebra<")
    # layout: a rationale that does not start with <think>
    nothink = copy.deepcopy(ctrl)
    nothink.sample_id += "-nothink"
    nothink.rationale[0].text = nothink.rationale[0].text.replace("<think>", "")
    planted = [miss, twice, whole, wrong, bad_tag, nothink]
    kept, rep = filter_samples(good + planted, VIEW, progress=False)
    assert [s.sample_id for s in kept] == [s.sample_id for s in good]
    assert rep.removed_ids("region_validity") == [miss.sample_id]
    assert set(rep.removed_ids("non_redundancy")) == {twice.sample_id, whole.sample_id}
    assert set(rep.removed_ids("coherence")) == {wrong.sample_id, bad_tag.sample_id}
    assert rep.removed_ids("layout") == [nothink.sample_id]
    assert rep.total == 14 and rep.kept == 8
    text = str(rep)
    assert "kept 8 of 14" in text and miss.sample_id in text
    # thresholds are knobs: allow any overlap and the duplicate crop stays
    assert check_sample(twice, VIEW, FilterConfig(max_iou=1.0)) is None


def test_coherence_accepts_evidence_words_and_alternatives(samples):
    comp = next(s for s in samples if s.family == "compare_two")
    concl = comp.rationale[-1].text
    assert ("same" in concl) == (comp.answer == "yes") and check_sample(comp, VIEW) is None
    flipped = copy.deepcopy(comp)
    flipped.rationale[-1].text = (
        concl.replace("same", "different") if "same" in concl else concl.replace("different", "same")
    )
    flipped.answers = ["yes"] if comp.answer == "no" else ["no"]
    flipped.rationale[-1].text = flipped.rationale[-1].text.replace(
        f"<answer>{comp.answer}<", f"<answer>{flipped.answer}<"
    )
    assert check_sample(flipped, VIEW) is None  # consistent again
    flipped.rationale[-1].text = concl.replace(f"<answer>{comp.answer}<", f"<answer>{flipped.answer}<")
    assert check_sample(flipped, VIEW)[0] == "coherence"


def test_samples_without_ground_truth_are_kept_and_counted_unchecked(samples):
    s = copy.deepcopy(samples[0])
    s.regions, s.details = [], []
    kept, rep = filter_samples([s], VIEW, progress=False)
    assert len(kept) == 1 and rep.unchecked["region_validity"] == 1


def test_corrupt_makes_each_filter_fire(samples):
    expect = {
        "miss": "region_validity",
        "repeat": "non_redundancy",
        "whole": "non_redundancy",
        "contradict": "coherence",
        "nothink": "layout",
    }
    counts = build_samples(1, seed=0, families=["count"], progress=False)
    for s in [*samples[:2], *counts]:  # read_one, compare_two, count
        for how in CORRUPTIONS:
            bad = corrupt(s, how)
            assert check_sample(bad, VIEW)[0] == expect[how], (s.sample_id, how)
        assert check_sample(s, VIEW) is None  # the original is untouched
    ctrl = samples[2]
    assert ctrl.family == "control"
    assert check_sample(corrupt(ctrl, "contradict"), VIEW)[0] == "coherence"
    with pytest.raises(ValueError, match="no crop"):
        corrupt(ctrl, "miss")


def test_glyph_samples_pass_the_filters():
    glyphs = build_samples(6, seed=0, families=["glyph"], progress=False)
    kept, rep = filter_samples(glyphs, VIEW, progress=False)
    assert len(kept) == 6
    assert all(s.rationale[-1].text.startswith((" The digit is", " It reads", " It is")) for s in glyphs)
