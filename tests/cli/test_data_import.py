"""`r3lab data import`: official VLM-R3 files and grounded-VQA records become a dataset in the model's view."""

import json

import pytest
from PIL import Image

from r3lab.cli.app import main
from r3lab.core.crop_calls import find_crop_calls
from r3lab.core.regions import Frame, ViewConfig
from r3lab.core.trajectory import IMAGE
from r3lab.data.dataset import load_dataset
from r3lab.data.formats import OFFICIAL_SFT_VIEW
from r3lab.data.vlir import view_mismatch
from r3lab.data.world import region_input_box
from r3lab.testing import tiny_policy, toy_image


def _official_sft(tmp_path, n=2, bad=False):
    """Official SFT records on an 896x672 image: boxes in the official frame (896x672 itself)."""
    toy_image((896, 672)).save(tmp_path / "main.png")
    Image.new("RGB", (120, 100), (250, 220, 30)).save(tmp_path / "crop.png")
    rec = {
        "image_path": "main.png",
        "question": "What colour is the small mark on the red circle?",
        "response_list": [
            '<think>Look closer. {"bbox_2d": [170, 140, 240, 220]}\n',
            "It is yellow.</think>\n<answer>yellow</answer>\n",
        ],
        "img_crop_list": ["crop.png"],
    }
    # distinct questions: an import refuses a record that repeats another exactly
    recs = [{**rec, "question": f"{rec['question']} ({k + 1})"} for k in range(n)] + (
        [{**rec, "image_path": "missing.png"}] if bad else []
    )
    (tmp_path / "sft.json").write_text(json.dumps(recs))
    return tmp_path / "sft.json"


def test_official_sft_boxes_are_moved_to_r3_tinys_view_and_train(tmp_path, capsys):
    src = _official_sft(tmp_path)
    assert Frame.of((896, 672), OFFICIAL_SFT_VIEW).input_size == (896, 672)
    assert main(["data", "import", "--format", "vlm-r3-sft", str(src), "--out", str(tmp_path / "ds")]) == 0
    policy = tiny_policy()
    ds = load_dataset(tmp_path / "ds")
    frame = Frame.of((896, 672), policy.view)
    for s in ds:
        assert view_mismatch(s, policy.view) == "" and s.provenance["regions_from"] == "crop calls"
        (crop,) = [p for p in s.rationale if p.kind == IMAGE]
        assert crop.image is None  # cut again from the original at the model's crop budget
        box = crop.info.box_input
        assert frame.input_size == (112, 84)
        assert box == region_input_box((170, 140, 240, 220), frame) == (21, 17, 30, 28)
        assert find_crop_calls(s.rationale[0].text)[-1].box == tuple(float(v) for v in box)
        assert s.regions[0] == pytest.approx((170, 140, 240, 220))  # the official frame is the original here
    assert "imported 2 records, 0 bad" in capsys.readouterr().out
    from r3lab.train.config import SFTConfig
    from r3lab.train.sft import train

    assert len(train(tiny_policy(fresh=True), ds.samples, SFTConfig(steps=1, batch_size=2))) == 1


def test_the_view_of_a_real_model_folder_is_used(tmp_path):
    src = _official_sft(tmp_path, n=1)
    big = ViewConfig(max_pixels=224 * 224, crop_max_pixels=224 * 224)
    folder = tiny_policy(view=big).save(tmp_path / "model")
    main(["data", "import", "--format", "vlm-r3-sft", str(src), "--out", str(tmp_path / "ds"), "--policy", str(folder)])
    (s,) = load_dataset(tmp_path / "ds")
    assert s.provenance["input_size"] == list(Frame.of((896, 672), big.with_factor(28)).input_size) == [252, 168]
    assert view_mismatch(s, tiny_policy(view=big).view) == "" and view_mismatch(s, tiny_policy().view) != ""


def test_rl_and_grounded_records_import_and_bad_records_are_listed(tmp_path, capsys):
    toy_image((448, 336)).save(tmp_path / "a.png")
    rl = [
        {"image_path": "a.png", "question": "q?", "answer": "red/crimson", "source": "x"},
        {"image_path": "a.png", "question": "q?", "answer": "/", "source": "x"},
    ]
    (tmp_path / "rl.json").write_text(json.dumps(rl))
    rc = main(
        [
            "data",
            "import",
            "--format",
            "vlm-r3-rl",
            str(tmp_path / "rl.json"),
            "--out",
            str(tmp_path / "rl"),
            "--errors",
            "report",
        ]
    )
    assert rc == 1 and "record 2: answer '/' holds an empty alternative" in capsys.readouterr().out
    (s,) = load_dataset(tmp_path / "rl")
    assert s.answers == ["red", "crimson"] and s.rationale is None
    g = [{"image": "a.png", "question": "What is red?", "answer": "disc", "box": [0.1, 0.1, 0.35, 0.45]}]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(r) for r in g) + "\n")
    main(
        [
            "data",
            "import",
            "--format",
            "grounded-vqa",
            str(tmp_path / "g.jsonl"),
            "--out",
            str(tmp_path / "g"),
            "--box-format",
            "xyxy_norm",
        ]
    )
    (s,) = load_dataset(tmp_path / "g")
    assert view_mismatch(s, tiny_policy().view) == "" and s.regions[0] == pytest.approx((44.8, 33.6, 156.8, 151.2))


def test_errors_name_the_record_and_nothing_is_written(tmp_path):
    src = _official_sft(tmp_path, bad=True)
    with pytest.raises(FileNotFoundError, match=r"sft\.json: record 3: image .*missing\.png does not exist"):
        main(["data", "import", "--format", "vlm-r3-sft", str(src), "--out", str(tmp_path / "ds")])
    assert not (tmp_path / "ds").exists()
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "meta.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        main(["data", "import", "--format", "vlm-r3-sft", str(src), "--out", str(tmp_path / "ds")])


@pytest.mark.parametrize("fmt,name", [("vlm-r3-sft", "sft.json"), ("grounded-vqa", "g.jsonl")])
def test_training_on_an_official_file_names_the_import_command(tmp_path, fmt, name, monkeypatch):
    import r3lab.cli.inputs as cli_policy

    if fmt == "vlm-r3-sft":
        _official_sft(tmp_path)
    else:
        record = {"image": "a.png", "question": "q", "answer": "a", "box": [1, 2, 3, 4]}
        (tmp_path / name).write_text(json.dumps(record))
    monkeypatch.setattr(cli_policy, "load_start_policy", lambda *a: pytest.fail("the model was loaded first"))
    with pytest.raises(ValueError, match=rf"{name} is not an r3lab dataset .*r3lab data import --format {fmt} "):
        main(["train", "sft", "--data", str(tmp_path / name)])
