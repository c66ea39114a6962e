"""Every lesson's exercises in the one form: difficulty, minutes, hardware, a check a student runs, an expected output
from the solutions' default run; every check called in an exercise exists and is tested right and wrong."""

import json

import pytest

from r3lab.course import exercises as ex
from r3lab.course import runner
from r3lab.course.checks import CHECKS

LESSONS = runner.find_notebooks()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_exercise_states_difficulty_time_hardware_check_and_expected_output(lesson):
    items = ex.exercises(lesson)
    assert items, f"{lesson.name}: no exercise in the form '1. **Title** · ●○○ · 5 min · CPU'"
    assert [e.n for e in items] == ex.numbered(lesson), f"{lesson.name}: a numbered exercise outside the form"
    ex.check("00.4", [], 0.0)  # registers every check module
    for e in items:
        assert 1 <= e.difficulty <= 3 and 0 < e.minutes <= 180 and e.hardware, e
        assert e.check == e.key, f"{e.key}: its check line should call check({e.key!r}, ...)"
        assert e.check in CHECKS, f"{e.key}: check({e.check!r}) is not registered in r3lab.course.checks*"
        assert f"<!-- expected:{e.key} -->" in e.text, f"{e.key}: no expected-output span"


def test_expected_outputs_come_from_a_solutions_run(tmp_path):
    path = tmp_path / "expected.json"
    run = tmp_path / "results.json"
    run.write_text(
        json.dumps(
            [
                {"name": "20_sft", "ok": True, "parameters": {}, "numbers": {"expected_20_1": "loss 0.3", "other": 1}},
                {"name": "30_rgrpo", "ok": True, "parameters": {"smoke": True}, "numbers": {"expected_30_1": "tiny"}},
                {"name": "40_explain_crops", "ok": False, "parameters": {}, "numbers": {"expected_40_1": "broken"}},
            ]
        )
    )
    assert ex.record_expected(run, path) == {"20.1": "loss 0.3"}  # smoke runs and failures record nothing
    assert ex.expected("20.1", path) == "loss 0.3" and "make solutions" in ex.expected("30.1", path)


def test_a_check_prints_a_pass_or_what_is_wrong(capsys):
    assert ex.check("00.4", [type("S", (), {"answers": ["a"]})()], 1.0) is True
    assert capsys.readouterr().out.startswith("✓ exercise 00.4 passed")
    assert ex.check("00.4", [type("S", (), {"answers": ["a"]})()], 0.5) is False
    assert capsys.readouterr().out.startswith("✗ exercise 00.4 not yet:")


def test_every_exercise_has_one_or_two_folded_hints_before_its_expected_output():
    import re

    from r3lab.course.exercises import exercises
    from r3lab.course.runner import find_notebooks

    for path in find_notebooks():
        for e in exercises(path):
            hints = re.findall(r"<details><summary>Hint( \d)?</summary>\n\n(.+?)</details>", e.text, re.S)
            assert 1 <= len(hints) <= 2 and all(len(h.strip()) > 30 for _, h in hints), (e.key, len(hints))
            assert e.text.index("<summary>Hint") < e.text.index("<summary>Expected output"), e.key


def test_each_expected_output_answers_the_exercise_as_written():
    import json
    import re

    from r3lab.course import runner as nbr
    from r3lab.course.exercises import EXPECTED, exercises

    data = json.loads(EXPECTED.read_text())
    for path in nbr.find_notebooks():
        for e in exercises(path):
            got = data.get(e.key, "")
            assert not re.search(r"/tmp/|r3lab-sol|/home/|/root/", got), f"{e.key}: a machine's path: {got}"
            asked = {int(n) for n in re.findall(r"--steps (\d+)|steps=(\d+)", e.text) for n in n if n}
            said = {int(n) for n in re.findall(r"\b(\d+) steps\b", got)}
            assert not (asked and said) or said <= asked, f"{e.key}: the exercise runs {asked} steps, {got!r}"
    G = int(nbr.declared(nbr.find_notebooks(["10"])[0])["group_size"]["default"])
    assert data["10.4"].startswith(f"{G} rows"), data["10.4"]  # section 2's group, as the exercise says
    g2, g8 = re.findall(r"G=\d+ (\d+)%", data["30.1"])
    assert g2 != g8, data["30.1"]  # "which is larger?" has an answer
