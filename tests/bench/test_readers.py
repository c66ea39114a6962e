"""Real benchmarks read from files in their exact published formats: prompts, answers, boxes, shuffling, errors."""

import csv
import json

import pytest

from r3lab.bench.readers import BENCHMARKS, read_benchmark, read_vstar
from r3lab.bench.tsv import TsvTable
from r3lab.testing.mini_benchmarks import jpeg_base64, scene, write_benchmark, write_vstar

# one line of V*'s test_questions.jsonl, as the benchmark ships it (craigwu/vstar_bench)
VSTAR_LINE = {
    "image": "direct_attributes/sa_1.jpg",
    "text": "What is the color of the cup?\n(A) white\n(B) red\n"
    "(C) blue\n(D) black\nAnswer with the option's letter from the given choices directly.",
    "category": "direct_attributes",
    "question_id": 7,
    "label": "A",
}


def _vstar(tmp_path, lines, annotation=None):
    (tmp_path / "direct_attributes").mkdir(parents=True, exist_ok=True)
    im, _, _ = scene(0)
    im.save(tmp_path / "direct_attributes" / "sa_1.jpg")
    ann = (
        annotation
        if annotation is not None
        else {
            "target_object": ["cup"],
            "bbox": [[10, 20, 30, 40]],
            "question": "What is the color of the cup?",
            "options": ["white", "red", "blue", "black"],
        }
    )
    (tmp_path / "direct_attributes" / "sa_1.json").write_text(json.dumps(ann))
    (tmp_path / "test_questions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return tmp_path


def test_a_vstar_line_becomes_the_lmms_eval_prompt_with_its_boxes(tmp_path):
    (s,) = read_vstar(_vstar(tmp_path, [VSTAR_LINE]), shuffle=False)
    assert s.question == (
        "What is the color of the cup?\nA. white\nB. red\nC. blue\nD. black\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert s.answers == ["A"] and s.family == "direct_attributes" and s.sample_id == "vstar-7"
    assert s.regions == [(10.0, 20.0, 40.0, 60.0)]  # [x, y, w, h] -> x1 y1 x2 y2, original pixels
    assert s.provenance["options"] == {"A": "white", "B": "red", "C": "blue", "D": "black"}
    assert s.load_image().size == (320, 240)


def test_vstar_shuffling_is_deterministic_per_question_and_recorded(tmp_path):
    folder = write_vstar(tmp_path / "v", n_attribute=6, n_position=4)
    a = read_vstar(folder, seed=3)
    b = read_vstar(folder, seed=3)
    assert [s.question for s in a] == [s.question for s in b]
    assert [s.question for s in read_vstar(folder, n=2, seed=3)] == [s.question for s in a[:2]]  # n does not matter
    c = read_vstar(folder, seed=4)
    assert [s.answers for s in a] != [s.answers for s in c]  # another seed, other orders
    raw = [json.loads(x) for x in (folder / "test_questions.jsonl").read_text().splitlines()]
    for s, line in zip(a, raw):
        sh = s.provenance["shuffle"]
        assert sh["seed"] == 3 and sorted(sh["order"]) == list(range(len(s.provenance["options"])))
        correct = line["text"].splitlines()[1][4:]  # "(A) <the correct option>": V* lists it first
        assert s.provenance["options"][s.answers[0]] == correct
    assert {len(s.provenance["options"]) for s in a} == {4, 2}  # attributes: 4 options, positions: 2
    unshuffled = read_vstar(folder, shuffle=False)
    assert all(s.answers == ["A"] for s in unshuffled)  # why the options are shuffled


def test_options_written_on_one_line_read_the_same(tmp_path):
    inline = {
        **VSTAR_LINE,
        "text": "What is the color of the cup? (A) white (B) red (C) blue (D) black\n"
        "Answer with the option's letter from the given choices directly.",
    }
    (a,) = read_vstar(_vstar(tmp_path, [inline]), shuffle=False)
    (b,) = read_vstar(_vstar(tmp_path, [VSTAR_LINE]), shuffle=False)
    assert a.question == b.question and a.provenance["options"] == b.provenance["options"]


def test_a_bad_vstar_line_is_named(tmp_path):
    cases = [
        ({**VSTAR_LINE, "label": ""}, "label"),
        ({**VSTAR_LINE, "label": "E"}, "not one of the options"),
        ({**VSTAR_LINE, "text": "Q?\n(B) x\n(A) y"}, "out of order"),
        ({**VSTAR_LINE, "text": "Q? (B) x (A) y"}, "in order"),
        ({**VSTAR_LINE, "image": "direct_attributes/missing.jpg"}, "does not exist"),
    ]
    for bad, what in cases:
        folder = _vstar(tmp_path, [VSTAR_LINE, bad])
        with pytest.raises((ValueError, FileNotFoundError), match=f"line 2.*{what}"):
            read_vstar(folder)


def test_vstar_needs_the_annotation_beside_each_image(tmp_path):
    folder = _vstar(tmp_path, [VSTAR_LINE])
    (folder / "direct_attributes" / "sa_1.json").unlink()
    with pytest.raises(FileNotFoundError, match="line 1.*sa_1.json.*target boxes"):
        read_vstar(folder)
    _vstar(tmp_path, [VSTAR_LINE], annotation={"bbox": [[1, 2, 3]]})
    with pytest.raises(ValueError, match="line 1.*\\[x, y, w, h\\]"):
        read_vstar(folder)
    _vstar(tmp_path, [VSTAR_LINE])
    (folder / "test_questions.jsonl").write_text(json.dumps(VSTAR_LINE) + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_vstar(folder)


def test_every_benchmark_reads_its_miniature_copy(tmp_path):
    for name in BENCHMARKS:
        samples = read_benchmark(name, write_benchmark(name, tmp_path / name))
        assert samples and all(s.answers[0] in s.provenance["options"] for s in samples), name
        assert all(s.load_image().size == (320, 240) for s in samples)  # images decode lazily, one at a time
        assert all(bool(s.regions) == (name in ("vstar", "treebench")) for s in samples), name


def test_the_tsv_prompts_follow_lmms_eval_and_vlmevalkit(tmp_path):
    hr = read_benchmark("hrbench4k", write_benchmark("hrbench4k", tmp_path))[0]
    o = hr.provenance["options"]
    assert (
        hr.question
        == "What colour is the disc?\n"
        + "".join(f"{k}. {o[k]}\n" for k in "ABCD")
        + "Answer the option letter directly."
    )
    assert hr.provenance["cycle_category"] == "0" and hr.provenance["category"] == "single"
    mme = read_benchmark("mme-realworld-lite", write_benchmark("mme-realworld-lite", tmp_path))[0]
    assert "The choices are listed below:\n(A) " in mme.question and len(mme.provenance["options"]) == 5
    assert mme.question.endswith(
        "Respond with only the letter (A, B, C, D, or E) of the correct option. \nThe best answer is:"
    )
    tree = read_benchmark("treebench", write_benchmark("treebench", tmp_path))[0]
    assert tree.question.startswith("Question: What colour is the disc?\nOptions:\nA. ")
    assert tree.question.endswith("Answer with the correct option's letter directly. \n")
    assert len(tree.regions) == 1 and tree.family == "Perception/Attributes"


def _tsv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


HR = ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"]


def test_a_bad_tsv_row_is_named(tmp_path):
    good = ["0", "Q", "A", "single", "a", "b", "c", "d", jpeg_base64(scene(0)[0]), "0"]
    cases = [
        (["1", "Q", "E", "single", "a", "b", "c", "d", jpeg_base64(scene(1)[0]), "0"], "answer 'E' is not one of"),
        (["1", "Q", "A", "single", "a", "b", "c", "d", "!!notbase64-but-long" * 5, "0"], "base64"),
        (["1", "Q", "A", "single", "a", "b", "c", "d", "", "0"], "empty"),
        (["1", "Q", "A", "single", "a", "b", "c", "d", "99", "0"], "neither a base64 image nor"),
        (["1", "Q", "A", "single"], "has 4 fields, the header 10"),
    ]
    for row, what in cases:
        path = _tsv(tmp_path / "hr.tsv", HR, [good, row])
        with pytest.raises(ValueError, match=r"hr.tsv: row 2 \(line 3\).*" + what):
            for s in read_benchmark("hrbench4k", path):
                s.load_image()


def test_tsv_errors_name_missing_columns_quotes_and_targets(tmp_path):
    with pytest.raises(ValueError, match="no column\\(s\\) \\['cycle_category'\\]"):
        read_benchmark("hrbench4k", _tsv(tmp_path / "a.tsv", HR[:-1], []))
    (tmp_path / "b.tsv").write_text("\t".join(HR) + '\n0\t"open quote\n')
    with pytest.raises(ValueError, match="quoted field opened on line 2 is never closed"):
        TsvTable(tmp_path / "b.tsv")
    tree = ["index", "image", "question", "A", "B", "answer", "category", "target_instances"]
    path = _tsv(
        tmp_path / "t.tsv", tree, [["0", jpeg_base64(scene(0)[0]), "Q", "x", "y", "A", "Perception/OCR", "[[1, 2]]"]]
    )
    with pytest.raises(ValueError, match="row 1 \\(line 2\\).*target_instances"):
        read_benchmark("treebench", path)
    with pytest.raises(FileNotFoundError, match="download"):
        read_benchmark("treebench", tmp_path / "nowhere.tsv")
    with pytest.raises(ValueError, match="unknown benchmark"):
        read_benchmark("mmbench", tmp_path)


def test_a_quoted_field_may_span_lines_and_rows_are_counted_as_records(tmp_path):
    img = jpeg_base64(scene(0)[0])
    path = _tsv(
        tmp_path / "hr.tsv",
        HR,
        [
            ["0", "two\nlines", "A", "single", "a", "b", "c", "d", img, "0"],
            ["1", "Q", "B", "cross", "a", "b", "c", "d", "0", "0"],
        ],
    )
    table = TsvTable(path)
    assert [r["_row"] for r in table.rows] == [1, 2] and [r["_line"] for r in table.rows] == [2, 4]
    assert table.rows[0]["question"] == "two\nlines" and "image" not in table.rows[0]  # big fields stay on disk
    assert table.image(1).size == table.image(0).size == (320, 240)  # row 2 refers to row 1's image
