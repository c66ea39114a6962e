import json

import pytest
from PIL import Image

from r3lab.core.crop_calls import find_crop_calls
from r3lab.core.regions import Frame, ViewConfig, crop_and_zoom
from r3lab.core.trajectory import IMAGE
from r3lab.data.filters import check_sample, filter_samples
from r3lab.data.formats import OFFICIAL_SFT_VIEW, export_rl, export_sft, import_rl, import_sft
from r3lab.data.grounded_vqa import import_grounded_vqa
from r3lab.data.vlir import build_samples
from r3lab.data.world import region_input_box
from r3lab.testing import png_header, tiny_policy

VIEW = ViewConfig()


@pytest.fixture(scope="module")
def samples():
    return build_samples(8, seed=2, families=["read_one", "compare_two", "count", "control"], progress=False)


def _key(s):
    return (
        s.sample_id,
        s.family,
        s.question,
        s.answers,
        [tuple(r) for r in s.regions],
        [tuple(d) for d in s.details],
        s.provenance,
        [(p.kind, p.text, tuple(p.info.box_input) if p.info else None) for p in s.rationale or []],
    )


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sft_round_trip_is_lossless(samples, tmp_path):
    f1 = export_sft(samples, tmp_path / "a" / "sft.json")
    back, rep = import_sft(f1)
    assert rep.kept == len(samples) and rep.errors == []
    assert [_key(s) for s in back] == [_key(s) for s in samples]
    for s, b in zip(samples, back):
        main = s.load_image()
        assert b.load_image().tobytes() == main.tobytes()
        for p, q in zip([p for p in s.rationale if p.kind == IMAGE], [p for p in b.rationale if p.kind == IMAGE]):
            assert q.image.tobytes() == crop_and_zoom(main, p.info.box_input, VIEW).image.tobytes()
        assert check_sample(b, VIEW) is None
    # file level: exporting what was imported writes the same bytes (JSON, images and crops)
    f2 = export_sft(back, tmp_path / "b" / "sft.json")
    assert _tree(f1.parent) == _tree(f2.parent)
    rec = json.loads(f1.read_text())[0]
    assert set(rec) == {"image_path", "question", "response_list", "img_crop_list", "r3lab"}
    assert len(rec["img_crop_list"]) == len(rec["response_list"]) - 1
    assert not rec["response_list"][-1].endswith("<|im_end|>")


def _official_record(tmp_path, segs, n_crops=1, size=(448, 336)):
    Image.new("RGB", size, (200, 10, 10)).save(tmp_path / "main.png")
    for k in range(n_crops):
        Image.new("RGB", (56, 56), (10, 200, 10)).save(tmp_path / f"crop{k}.png")
    return {
        "image_path": "main.png",
        "question": "What is it?",
        "response_list": segs,
        "img_crop_list": [f"crop{k}.png" for k in range(n_crops)],
    }


def test_official_sft_record_without_r3lab_key(tmp_path):
    frame = Frame.of((448, 336), OFFICIAL_SFT_VIEW)
    assert frame.input_size == (448, 336)
    segs = [
        '<think>Look closer. {"bbox_2d": [10, 20, 110, 120]}\n',
        "The sign says stop.</think>\n<answer>stop</answer>\n",
    ]
    (tmp_path / "sft.json").write_text(json.dumps([_official_record(tmp_path, segs)]))
    [s], rep = import_sft(tmp_path / "sft.json")
    assert s.answers == ["stop"] and s.rationale[0].text.endswith("}")
    assert s.rationale[-1].text.endswith("</answer><|im_end|>")
    assert s.rationale[1].info.box_input == (10.0, 20.0, 110.0, 120.0)
    assert check_sample(s, OFFICIAL_SFT_VIEW) is None
    out = export_sft([s], tmp_path / "out" / "sft.json", extras=False)
    again = json.loads(out.read_text())[0]
    assert again["response_list"] == segs and again["question"] == "What is it?"
    # the imported sample trains: the pre-made crop is fitted into the policy's crop bounds
    policy = tiny_policy()
    s.provenance["input_size"] = list(Frame.of((448, 336), policy.view).input_size)
    traj = s.reference(policy.view).tokenize(policy)
    assert traj.crops[0].info.input_size == (56, 56)


def test_bad_sft_records_are_reported_with_their_number(tmp_path):
    good = _official_record(tmp_path, ['<think>{"bbox_2d": [1, 2, 30, 40]}', "x</think><answer>a</answer>"])
    no_call = _official_record(tmp_path, ["<think>no call here", "<answer>a</answer>"])
    few_crops = {**good, "img_crop_list": []}
    missing = {**good, "image_path": "nope.png"}
    (tmp_path / "sft.json").write_text(json.dumps([good, no_call, few_crops, missing, 7]))
    with pytest.raises(ValueError, match=r"record 2: segment 0 must end with a valid crop call"):
        import_sft(tmp_path / "sft.json")
    ok, rep = import_sft(tmp_path / "sft.json", errors="report")
    assert len(ok) == 1 and [n for n, _ in rep.errors] == [2, 3, 4, 5]
    assert "nope.png" in rep.errors[2][1] and "img_crop_list has 0" in rep.errors[1][1]
    assert "record 4" in str(rep)


def test_rl_round_trip_is_lossless(samples, tmp_path):
    f1 = export_rl(samples, tmp_path / "a" / "rl.json")
    rec = json.loads(f1.read_text())
    assert set(rec[0]) == {"image_path", "question", "answer", "source", "r3lab"}
    count = next(r for r in rec if r["r3lab"]["family"] == "count")
    assert "/" in count["answer"] and count["source"] == "r3lab-count"
    back, rep = import_rl(f1)
    assert rep.kept == len(samples)
    for s, b in zip(samples, back):
        assert (b.question, b.answers, b.family, b.sample_id, b.regions, b.details) == (
            s.question,
            s.answers,
            s.family,
            s.sample_id,
            s.regions,
            s.details,
        )
        assert b.load_image().tobytes() == s.load_image().tobytes() and b.rationale is None
    f2 = export_rl(back, tmp_path / "b" / "rl.json")
    assert _tree(f1.parent) == _tree(f2.parent)
    # without the r3lab key the official fields still round trip
    plain = export_rl(back, tmp_path / "c" / "rl.json", extras=False)
    again, _ = import_rl(plain)
    f3 = export_rl(again, tmp_path / "d" / "rl.json", extras=False)
    r1, r3 = json.loads(plain.read_text()), json.loads(f3.read_text())
    strip = lambda r: {k: v for k, v in r.items() if k != "image_path"}  # noqa: E731 (names come from ids)
    assert [strip(r) for r in r1] == [strip(r) for r in r3]
    assert all(
        (plain.parent / a["image_path"]).read_bytes() == (f3.parent / b["image_path"]).read_bytes()
        for a, b in zip(r1, r3)
    )


def test_bad_rl_records(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "i.png")
    recs = [
        {"image_path": "i.png", "question": "q", "answer": "a/b", "source": "textvqa"},
        {"image_path": "i.png", "question": "q", "answer": "", "source": "x"},
    ]
    (tmp_path / "rl.json").write_text(json.dumps(recs))
    ok, rep = import_rl(tmp_path / "rl.json", errors="report")
    assert ok[0].answers == ["a", "b"] and ok[0].provenance["source_name"] == "textvqa"
    assert rep.errors[0][0] == 2 and "answer" in rep.errors[0][1]


def test_grounded_vqa_to_vlir_samples(tmp_path):
    Image.new("RGB", (448, 336), (250, 250, 250)).save(tmp_path / "a.jpg")
    lines = [
        {"image": "a.jpg", "question": "What does the sign say?", "answer": "stop", "box": [100, 50, 180, 110]},
        {
            "image": "a.jpg",
            "question": "Which two words?",
            "answer": ["open", "opened"],
            "bboxs": [[0.1, 0.1, 0.2, 0.2], [0.6, 0.6, 0.9, 0.8]],
        },
        "this line is not json",
        {"image": "a.jpg", "question": "q", "answer": "x", "box": [50, 50, 40, 60]},
        {"image": "missing.jpg", "question": "q", "answer": "x", "box": [1, 2, 3, 4]},
        {"image": "a.jpg", "question": "q", "answer": "x"},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    (tmp_path / "g.jsonl").write_text(text + "\n")
    with pytest.raises(ValueError, match=r"g\.jsonl: line 2: box .* under one pixel .* box_format='xyxy_norm'"):
        import_grounded_vqa(tmp_path / "g.jsonl")  # line 2 uses normalised boxes, read here as pixels
    ok, rep = import_grounded_vqa(tmp_path / "g.jsonl", errors="report", box_format="xyxy")
    assert [n for n, _ in rep.errors] == [2, 3, 4, 5, 6]
    assert "not valid JSON" in rep.errors[1][1] and "missing.jpg" in rep.errors[3][1] and "box" in rep.errors[4][1]
    s = ok[0]
    frame = Frame.of((448, 336), VIEW)
    call = find_crop_calls(s.rationale[0].text, frame)[-1]
    assert call.box == tuple(float(v) for v in region_input_box((100, 50, 180, 110), frame))
    assert s.rationale[-1].text.endswith("<answer>stop</answer><|im_end|>") and s.provenance["line"] == 1
    # normalised boxes: two crops, both valid, and both samples pass the VLIR filters
    (tmp_path / "n.jsonl").write_text(json.dumps(lines[1]) + "\n")
    [two], _ = import_grounded_vqa(tmp_path / "n.jsonl", box_format="xyxy_norm")
    assert len([p for p in two.rationale if p.kind == IMAGE]) == 2 and two.answers == ["open", "opened"]
    kept, frep = filter_samples([s, two], VIEW, progress=False)
    assert len(kept) == 2, str(frep)
    with pytest.raises(ValueError, match="box_format"):
        import_grounded_vqa(tmp_path / "n.jsonl", box_format="cxcywh")


BAD_IMAGES = {
    "text.png": b"this is not a png, just text\n",
    "huge.png": png_header(20000, 20000),
    "cut.png": png_header(64, 64)[:20],
    "thin.png": None,
}


@pytest.fixture
def bad_images(tmp_path):
    for name, data in BAD_IMAGES.items():
        Image.new("RGB", (1, 400)).save(tmp_path / name) if data is None else (tmp_path / name).write_bytes(data)
    return list(BAD_IMAGES)


@pytest.mark.parametrize("fmt", ["sft-main", "sft-crop", "rl", "grounded"])
def test_unreadable_images_are_reported_with_their_record(tmp_path, bad_images, fmt):
    """A PNG that is text, a header claiming 20000x20000, a cut-off file, a 1x400 image: each reported
    with its record number (errors='report') and named with it (errors='raise'); the good record imports."""
    good = _official_record(tmp_path, ['<think>{"bbox_2d": [1, 2, 30, 40]}', "x</think><answer>a</answer>"])
    if fmt.startswith("sft"):
        key = "image_path" if fmt == "sft-main" else "img_crop_list"
        recs = [good] + [{**good, key: name if key == "image_path" else [name]} for name in bad_images]
        load = import_sft
    elif fmt == "rl":
        recs = [
            {"image_path": name, "question": "q", "answer": "a", "source": "x"} for name in ["main.png"] + bad_images
        ]
        load = import_rl
    else:
        recs = [
            {"image": name, "question": "q", "answer": "a", "box": [0, 0, 1, 50]} for name in ["main.png"] + bad_images
        ]
        load = import_grounded_vqa
    (tmp_path / "f.json").write_text(json.dumps(recs))
    ok, rep = load(tmp_path / "f.json", errors="report")
    assert len(ok) == 1 and [n for n, _ in rep.errors] == [2, 3, 4, 5]
    for (_n, msg), name in zip(rep.errors, bad_images):
        assert name in msg and ("not a readable image" in msg or "cannot be shown to the model" in msg)
    assert "DecompressionBombError" in rep.errors[1][1]
    with pytest.raises(ValueError, match=r"f\.json: record 2: .*text\.png is not a readable image"):
        load(tmp_path / "f.json")


def test_an_empty_file_is_an_error_not_zero_records(tmp_path):
    for text in ("", "  \n", "[]", "[ ]\n"):
        (tmp_path / "sft.json").write_text(text)
        for load in (import_sft, import_rl, import_grounded_vqa):
            with pytest.raises(ValueError, match=r"sft\.json holds no records"):
                load(tmp_path / "sft.json", errors="report")
    (tmp_path / "sft.json").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match=r"sft\.json is not a UTF-8 text file"):
        import_sft(tmp_path / "sft.json")


@pytest.mark.parametrize("answer", ["/", "a/", "/b", "a//b", " / "])
def test_an_rl_answer_with_an_empty_alternative_is_reported(tmp_path, answer):
    Image.new("RGB", (64, 64)).save(tmp_path / "i.png")
    recs = [
        {"image_path": "i.png", "question": "q", "answer": "a/b", "source": "x"},
        {"image_path": "i.png", "question": "q", "answer": answer, "source": "x"},
    ]
    (tmp_path / "rl.json").write_text(json.dumps(recs))
    ok, rep = import_rl(tmp_path / "rl.json", errors="report")
    assert [s.answers for s in ok] == [["a", "b"]] and rep.errors[0][0] == 2
    assert f"answer {answer!r} holds an empty alternative" in rep.errors[0][1]


def test_a_crop_call_in_the_last_segment_is_refused(tmp_path):
    segs = ['<think>{"bbox_2d": [1, 2, 30, 40]}', 'x {"bbox_2d": [5, 5, 50, 50]}</think><answer>a</answer>']
    (tmp_path / "sft.json").write_text(json.dumps([_official_record(tmp_path, segs)]))
    with pytest.raises(
        ValueError, match=r"record 1: the last segment \(segment 1\) holds a crop call .* no crop follows"
    ):
        import_sft(tmp_path / "sft.json")
