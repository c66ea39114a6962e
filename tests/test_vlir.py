import copy
import dataclasses
import json

import pytest
from PIL import Image

from r3lab import cli
from r3lab.regions import Frame, ViewConfig, find_crop_calls, format_crop_call
from r3lab.samples import Sample
from r3lab.testing import tiny_policy
from r3lab.trajectory import IMAGE, MODEL, ImageInfo, Piece
from r3lab.vlir import (
    FilterConfig, build_samples, check_sample, filter_samples, image_size, load_dataset, retarget, save_dataset,
)
from r3lab.world import Scene, WorldConfig, make_task, region_input_box

VIEW = ViewConfig()


@pytest.fixture(scope="module")
def samples():
    return build_samples(16, seed=0, progress=False)


def _pixels(s):
    return s.load_image().tobytes()


def test_build_is_deterministic_and_cycles_families(samples):
    again = build_samples(16, seed=0, progress=False)
    assert [s.sample_id for s in samples] == [s.sample_id for s in again]
    assert all(a.question == b.question and a.regions == b.regions and _pixels(a) == _pixels(b)
               for a, b in zip(samples[:4], again[:4]))
    assert [s.family for s in samples[:4]] == ["read_one", "compare_two", "count", "control"]
    assert len({s.sample_id for s in samples}) == 16
    assert build_samples(4, seed=1, progress=False)[0].question != samples[0].question or \
        _pixels(build_samples(1, seed=1, progress=False)[0]) != _pixels(samples[0])
    with pytest.raises(ValueError, match="unknown task families"):
        build_samples(2, families=["read_one", "glyphs"])


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


# -- filters -----------------------------------------------------------------------------------
def _edit_crop(s, k, box):
    """A copy whose k-th crop (call text and image piece) is moved to `box`."""
    s = copy.deepcopy(s)
    idx = [i for i, p in enumerate(s.rationale) if p.kind == IMAGE][k]
    prev = s.rationale[idx - 1]
    call = find_crop_calls(prev.text)[-1]
    prev.text = prev.text[:call.start] + format_crop_call(box) + prev.text[call.end:]
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
    flipped.rationale[-1].text = concl.replace("same", "different") if "same" in concl else concl.replace("different", "same")
    flipped.answers = ["yes"] if comp.answer == "no" else ["no"]
    flipped.rationale[-1].text = flipped.rationale[-1].text.replace(f"<answer>{comp.answer}<", f"<answer>{flipped.answer}<")
    assert check_sample(flipped, VIEW) is None  # consistent again
    flipped.rationale[-1].text = concl.replace(f"<answer>{comp.answer}<", f"<answer>{flipped.answer}<")
    assert check_sample(flipped, VIEW)[0] == "coherence"


def test_samples_without_ground_truth_are_kept_and_counted_unchecked(samples):
    s = copy.deepcopy(samples[0])
    s.regions, s.details = [], []
    kept, rep = filter_samples([s], VIEW, progress=False)
    assert len(kept) == 1 and rep.unchecked["region_validity"] == 1


# -- datasets ----------------------------------------------------------------------------------
def _same(a: Sample, b: Sample, pixels=True):
    assert (a.sample_id, a.family, a.question, a.answers) == (b.sample_id, b.family, b.question, b.answers)
    assert [tuple(r) for r in a.regions] == [tuple(r) for r in b.regions]
    assert [tuple(r) for r in a.details] == [tuple(r) for r in b.details]
    assert [(p.kind, p.text, p.info.box_input if p.info else None) for p in a.rationale] == \
        [(p.kind, p.text, p.info.box_input if p.info else None) for p in b.rationale]
    assert a.provenance == b.provenance
    if pixels:
        assert a.load_image().tobytes() == b.load_image().tobytes()


@pytest.mark.parametrize("images", ["png", "scene"])
def test_dataset_round_trip(samples, tmp_path, images):
    out = save_dataset(samples[:6], tmp_path / "ds", {"seed": 0, "view": dataclasses.asdict(VIEW)}, images=images,
                       progress=False)
    ds = load_dataset(out)
    assert len(ds) == 6 and ds.meta["seed"] == 0 and ds.view == VIEW and ds.errors == []
    for a, b in zip(samples, ds):
        _same(a, b)
    if images == "png":
        assert (out / "images" / f"{samples[0].sample_id}.png").is_file()
        assert json.loads((out / "samples.jsonl").read_text().splitlines()[0])["image"].startswith("images/")
    else:
        assert not list((out / "images").iterdir())


def test_corrupt_line_names_file_and_line(samples, tmp_path):
    out = save_dataset(samples[:4], tmp_path / "ds", images="scene", progress=False)
    lines = (out / "samples.jsonl").read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # truncated JSON on line 3
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"samples\.jsonl:3: bad sample line"):
        load_dataset(out)
    ds = load_dataset(out, errors="report")
    assert len(ds) == 3 and [e.line for e in ds.errors] == [3]
    lines[2] = json.dumps({"question": "no id"})
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r":3: .*KeyError"):
        load_dataset(out)


def test_missing_image_names_the_path(samples, tmp_path):
    out = save_dataset(samples[:3], tmp_path / "ds", images="png", progress=False)
    victim = out / "images" / f"{samples[1].sample_id}.png"
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=rf"samples\.jsonl:2: image .*{victim.name} does not exist"):
        load_dataset(out)
    ds = load_dataset(out, errors="report")
    assert len(ds) == 2 and ds.errors[0].line == 2 and victim.name in ds.errors[0].message
    with pytest.raises(FileNotFoundError, match="r3lab data build"):
        load_dataset(tmp_path / "nowhere")


def test_loading_with_another_view_recomputes_boxes(samples, tmp_path):
    out = save_dataset(samples[:4], tmp_path / "ds", images="scene", progress=False)
    big = ViewConfig(max_pixels=224 * 224, crop_max_pixels=224 * 224)
    ds = load_dataset(out, view=big)
    for s, orig in zip(ds, samples):
        frame = Frame.of(image_size(s), big)
        assert s.provenance["input_size"] == list(frame.input_size) != orig.provenance["input_size"]
        for p, q, r in zip([p for p in s.rationale if p.kind == IMAGE], [p for p in orig.rationale if p.kind == IMAGE],
                           s.regions):
            assert p.info.box_input == region_input_box(r, frame) != q.info.box_input
            assert p.info.box_input[2] > 1.5 * q.info.box_input[2]  # about twice the coordinates
        assert check_sample(s, big) is None
        assert [p.text for p in s.rationale if "bbox" not in p.text] == [p.text for p in orig.rationale if "bbox" not in p.text]
    # a sample built for another view fails the layout filter instead of training on wrong boxes
    assert check_sample(samples[0], big)[0] == "layout"


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


def test_cli_build_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["data", "build", "--out", str(out), "--n", "8", "--seed", "3", "--families", "read_one", "count",
                   "--images", "scene", "--mark-size", "4", "--canvas-sizes", "[[560, 560]]"])
    assert rc == 0
    ds = load_dataset(out)
    assert len(ds) == 8 and {s.family for s in ds} == {"read_one", "count"}
    assert ds.meta["world"]["mark_size"] == 4 and ds.meta["seed"] == 3
    assert all(s.image.size == (560, 560) for s in ds)
    assert "kept 8 of 8" in capsys.readouterr().out


def test_corrupt_makes_each_filter_fire(samples):
    from r3lab.vlir import CORRUPTIONS, corrupt

    expect = {"miss": "region_validity", "repeat": "non_redundancy", "whole": "non_redundancy",
              "contradict": "coherence", "nothink": "layout"}
    for s in samples[:3]:  # read_one, compare_two, count
        for how in CORRUPTIONS:
            bad = corrupt(s, how)
            assert check_sample(bad, VIEW)[0] == expect[how], (s.sample_id, how)
        assert check_sample(s, VIEW) is None  # the original is untouched
    ctrl = samples[3]
    assert check_sample(corrupt(ctrl, "contradict"), VIEW)[0] == "coherence"
    with pytest.raises(ValueError, match="no crop"):
        corrupt(ctrl, "miss")


def test_glyph_samples_pass_the_filters():
    glyphs = build_samples(6, seed=0, families=["glyph"], progress=False)
    kept, rep = filter_samples(glyphs, VIEW, progress=False)
    assert len(kept) == 6 and all(s.rationale[-1].text.startswith((" The digit is", " It reads", " It is")) for s in glyphs)


def test_ids_with_slashes_make_safe_file_names(samples, tmp_path):
    s = copy.deepcopy(samples[0])
    s.sample_id = "textvqa/train 001"
    out = save_dataset([s], tmp_path / "ds", progress=False)
    assert (out / "images" / "textvqa_train_001.png").is_file()
    assert load_dataset(out)[0].sample_id == "textvqa/train 001"
    twin = copy.deepcopy(s)
    twin.sample_id = "textvqa/train_001"
    with pytest.raises(ValueError, match="unique"):
        save_dataset([s, twin], tmp_path / "ds2", progress=False)
