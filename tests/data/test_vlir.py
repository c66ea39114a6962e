"""VLIR samples: deterministic building, reference rationale layout and boxes, tokenization, retargeting."""

import copy
import dataclasses

import pytest
from PIL import Image

from r3lab.core.crop_calls import find_crop_calls
from r3lab.core.regions import Frame, ViewConfig
from r3lab.core.trajectory import IMAGE, MODEL
from r3lab.data.filters import check_sample
from r3lab.data.sample import Sample
from r3lab.data.vlir import build_samples, image_size, retarget
from r3lab.data.world import Scene, region_input_box
from r3lab.testing import tiny_policy

VIEW = ViewConfig()


@pytest.fixture(scope="module")
def samples():
    return build_samples(16, seed=0, progress=False)


def _pixels(s):
    return s.load_image().tobytes()


def test_build_is_deterministic_and_cycles_families(samples):
    again = build_samples(16, seed=0, progress=False)
    assert [s.sample_id for s in samples] == [s.sample_id for s in again]
    assert all(
        a.question == b.question and a.regions == b.regions and _pixels(a) == _pixels(b)
        for a, b in zip(samples[:4], again[:4])
    )
    assert [s.family for s in samples[:4]] == ["read_one", "compare_two", "control", "read_one"]
    assert len({s.sample_id for s in samples}) == 16
    assert build_samples(4, seed=1, progress=False)[0].question != samples[0].question or _pixels(
        build_samples(1, seed=1, progress=False)[0]
    ) != _pixels(samples[0])
    with pytest.raises(ValueError, match="unknown task families"):
        build_samples(2, families=["read_one", "glyphs"])


def test_weights_set_the_family_shares_and_keep_each_sample():
    fams = ["read_one", "compare_two", "control"]
    mixed = build_samples(12, seed=0, families=fams, weights={"compare_two": 2, "control": 0}, progress=False)
    assert [sum(s.family == f for s in mixed) for f in fams] == [4, 8, 0]
    assert [s.family for s in mixed[:3]] == ["compare_two", "read_one", "compare_two"]  # spread, not in blocks
    equal = {s.sample_id: s for s in build_samples(24, seed=0, families=fams, progress=False)}
    assert all(equal[s.sample_id].question == s.question and equal[s.sample_id].regions == s.regions for s in mixed)
    odd = build_samples(7, seed=0, families=fams, weights={"read_one": 1.5}, progress=False)
    assert len(odd) == 7 and sum(s.family == "read_one" for s in odd) == 3  # 7 * 1.5 / 3.5 = 3.0
    for bad, match in [
        ({"count": 1}, "not among"),
        ({"control": -1}, ">= 0"),
        ({"read_one": 0, "compare_two": 0, "control": 0}, "positive sum"),
    ]:
        with pytest.raises(ValueError, match=match):
            build_samples(3, families=fams, weights=bad, progress=False)


def test_images_are_lazy_scenes(samples):
    s = samples[0]
    assert isinstance(s.image, Scene) and image_size(s) == s.image.size
    assert s.load_image().size == s.image.size


def test_rationale_layout_and_boxes(samples):
    for s in samples:
        frame = Frame.of(image_size(s), VIEW)
        pieces = s.rationale
        assert pieces[0].text.startswith("<think>") and pieces[-1].text.endswith("</answer><|im_end|>")
        crops = [k for k, p in enumerate(pieces) if p.kind == IMAGE]
        assert len(crops) == {"read_one": 1, "count": 1, "compare_two": 2, "control": 0}[s.family]
        for k, region in zip(crops, s.regions):
            text = pieces[k - 1].text
            assert text.endswith("}")
            call = find_crop_calls(text, frame)[-1]
            assert call.ok and call.end == len(text)
            assert call.box == tuple(float(v) for v in region_input_box(region, frame)) == pieces[k].info.box_input
        assert f"<answer>{s.answer}</answer>" in pieces[-1].text
        assert check_sample(s, VIEW) is None


def test_reference_trajectory_tokenizes_with_the_tiny_policy(samples):
    policy = tiny_policy()
    for s in samples[:4]:
        traj = s.reference(policy.view).tokenize(policy)
        assert len(traj.crops) == len(s.regions)
        assert traj.final_answer() == s.answer
        mask = traj.loss_mask()
        kinds = traj.token_kinds()
        assert mask.sum().item() == sum(k == MODEL for k in kinds) > 0
        for crop in traj.crops:  # the cut crop covers the ground-truth region
            x1, y1, x2, y2 = crop.info.box_orig
            r = s.regions[traj.crops.index(crop)]
            assert x1 <= r[0] and y1 <= r[1] and x2 + 1 >= r[2] and y2 + 1 >= r[3]


def test_retarget_refuses_samples_without_regions(samples):
    s = copy.deepcopy(samples[0])
    s.regions = []
    with pytest.raises(ValueError, match="cannot move its crop boxes"):
        retarget(s, ViewConfig(max_pixels=224 * 224))


def test_sample_image_kinds(tmp_path):
    im = Image.new("RGB", (64, 48), (1, 2, 3))
    p = tmp_path / "a.png"
    im.save(p)
    for image in (im, str(p), lambda: im):
        assert Sample(image, "q", ["a"]).load_image().tobytes() == im.tobytes()
    assert Sample(im, "q", ["a"]).details == []


def test_view_mismatch_and_regions_from_calls(samples):
    from r3lab.data.vlir import regions_from_calls, view_mismatch

    s = samples[0]
    big = ViewConfig(max_pixels=224 * 224, crop_max_pixels=224 * 224)
    assert view_mismatch(s, VIEW) == "" and "frame, the policy sees its image at" in view_mismatch(s, big)
    bare = copy.deepcopy(s)
    bare.regions, bare.provenance = [], {"input_size": s.provenance["input_size"]}
    moved = retarget(regions_from_calls(bare), big)  # the crop boxes become the regions, then move
    assert view_mismatch(moved, big) == "" and moved.provenance["regions_from"] == "crop calls"
    frame = Frame.of(image_size(s), VIEW)
    for r, p in zip(moved.regions, [p for p in s.rationale if p.kind == IMAGE]):  # back in the source frame: the box
        assert tuple(round(v) for v in frame.to_input(r)) == tuple(p.info.box_input)
    from r3lab.data.grounding import grounding_sample  # crop calls without crop images (the base stage's targets)

    assert view_mismatch(grounding_sample(0, 1, view=VIEW), VIEW) == ""
    assert "frame, the policy sees" in view_mismatch(grounding_sample(0, 1, view=VIEW), big)
    with pytest.raises(ValueError, match="does not say which frame its crop boxes are in"):
        regions_from_calls(dataclasses.replace(bare, provenance={}))
