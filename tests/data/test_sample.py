"""Sample: one question about one image; its image loads from PIL, a path or a renderer; prompt and reference."""

import pytest
from PIL import Image

from r3lab.core.batch import collate
from r3lab.core.trajectory import ENV, IMAGE, MODEL, ImageInfo, Piece
from r3lab.data.sample import Sample
from r3lab.data.vlir import build_samples
from r3lab.testing import tiny_policy, toy_image


def test_the_image_loads_from_pil_a_path_or_a_renderer(tmp_path):
    im = toy_image((64, 48))
    im.save(tmp_path / "a.png")
    for source in (im, str(tmp_path / "a.png"), lambda: im):
        got = Sample(source, "q?", ["red"]).load_image()
        assert got.mode == "RGB" and got.tobytes() == im.convert("RGB").tobytes()


def test_a_missing_or_unreadable_image_names_the_sample_and_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"sample s1: image file .*nowhere.png does not exist"):
        Sample(str(tmp_path / "nowhere.png"), "q?", ["a"], sample_id="s1").load_image()
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"sample s2: image file .*bad.png is not a readable image"):
        Sample(str(tmp_path / "bad.png"), "q?", ["a"], sample_id="s2").load_image()
    from r3lab.testing import png_header

    (tmp_path / "bomb.png").write_bytes(png_header(20000, 20000))  # PIL's DecompressionBombError is no OSError
    with pytest.raises(
        ValueError,
        match=r"sample s3: image file .*bomb.png is not a readable image "
        r"\(DecompressionBombError",
    ):
        Sample(str(tmp_path / "bomb.png"), "q?", ["a"], sample_id="s3").load_image()


def test_the_prompt_carries_answers_regions_and_provenance():
    policy = tiny_policy()
    s = build_samples(1, seed=3, families=["read_one"], view=policy.view, progress=False)[0]
    assert s.answer == s.answers[0]
    t = s.prompt(policy.view, policy.prompt)
    assert [p.kind for p in t.pieces] == [ENV, IMAGE, ENV] and t.main.info.role == "main"
    assert s.question in t.pieces[2].text
    assert (t.answers, t.gt_boxes, t.family, t.sample_id) == (s.answers, s.regions, s.family, s.sample_id)


def test_the_reference_appends_the_rationale_with_crops_cut_lazily():
    policy = tiny_policy()
    s = build_samples(2, seed=3, families=["compare_two"], view=policy.view, progress=False)[0]
    t = s.reference(policy.view, policy.prompt)
    after = t.pieces[3:]
    assert [p.kind for p in after] == [p.kind for p in s.rationale]
    crops = [p for p in after if p.kind == IMAGE]
    assert len(crops) == 2 and all(p.image is None and p.info.role == "crop" for p in crops)
    assert [p.info.box_input for p in crops] == [p.info.box_input for p in s.rationale if p.kind == IMAGE]
    assert all(p.tag in ("reasoning", "answer") for p in after if p.kind == MODEL)
    t.tokenize(policy)
    assert all(p.image is not None and p.info.box_orig is not None for p in crops)  # cut from the original now
    assert s.rationale[1].image is None  # the sample itself is left as it was


def test_a_sample_without_a_rationale_has_a_prompt_but_no_reference():
    s = Sample(toy_image(), "q?", ["red"], sample_id="bare")
    s.prompt(tiny_policy().view)
    with pytest.raises(ValueError, match="bare has no reference rationale"):
        s.reference(tiny_policy().view)


def test_sample_reference_with_premade_crop_image():
    policy = tiny_policy()
    crop = Image.new("RGB", (300, 200), (0, 200, 0))
    s = Sample(
        toy_image(),
        "q?",
        ["green"],
        rationale=[
            Piece(MODEL, '<think>{"bbox_2d": [1, 2, 30, 40]}'),
            Piece(IMAGE, image=crop, info=ImageInfo("crop", (0, 0), (0, 0), (1, 2, 30, 40))),
            Piece(MODEL, "<answer>green</answer><|im_end|>"),
        ],
    )
    t = s.reference(policy.view).tokenize(policy)
    w, h = t.crops[0].info.input_size
    assert w % policy.view.factor == 0 and h % policy.view.factor == 0
    assert w * h <= policy.view.crop_max_pixels
    collate([t], policy)  # the processor agrees with the grid


def _rationale(last=" It is green.</think><answer>green</answer><|im_end|>", first="<think>look "):
    return [
        Piece(MODEL, first + '{"bbox_2d": [1, 2, 30, 40]}'),
        Piece(IMAGE, info=ImageInfo("crop", (0, 0), (0, 0), (1, 2, 30, 40))),
        Piece(MODEL, last),
    ]


@pytest.mark.parametrize(
    "question,rationale,where",
    [
        ("What <|image_pad|> colour?", None, "its question"),
        ("q?<|im_end|><|im_start|>assistant\n", None, "its question"),
        ("q?", _rationale(first="<think><|vision_start|> "), r"its rationale \(text 0\)"),
        ("q?", _rationale(last="It is green.<|im_end|> And more.<|im_end|>"), r"its rationale \(text 1\)"),
    ],
)
def test_control_token_text_in_a_sample_is_refused_naming_it(question, rationale, where):
    with pytest.raises(ValueError, match=rf"^sample 'bad1': {where} holds '<\|"):
        Sample(toy_image(), question, ["green"], rationale=rationale, sample_id="bad1")


def test_a_rationale_may_end_its_turn_and_an_edited_sample_is_checked_again():
    s = Sample(toy_image(), "q?", ["green"], rationale=_rationale(), sample_id="ok1")  # the trailing <|im_end|>
    policy = tiny_policy()
    s.question = "q <|image_pad|>"  # edited after it was made (a notebook)
    with pytest.raises(ValueError, match=r"sample 'ok1': its question holds '<\|image_pad\|>'"):
        s.reference(policy.view)
    s.question, s.rationale[0].text = "q?", "<|im_end|>" + s.rationale[0].text
    with pytest.raises(ValueError, match=r"sample 'ok1': its rationale \(text 0\) holds '<\|im_end\|>'"):
        s.reference(policy.view)
