"""The syllabus: one lesson per notebook, its objectives and measured times, the README tables drawn from it."""
import json

import pytest

from r3lab.course import runner
from r3lab.course import syllabus
from r3lab.course.syllabus import LESSONS, course_table, lesson, objectives_markdown, record_times, times_from_run


def test_one_lesson_per_notebook_in_order_with_objectives_and_times():
    assert [x.notebook for x in LESSONS] == [p.stem for p in runner.find_notebooks()]
    known = {x.notebook for x in LESSONS}
    for x in LESSONS:
        assert x.objectives and all(o and o[0].islower() for o in x.objectives), x.notebook
        # SFT from the shipped base needs 500 steps to read well above chance (about ten minutes on one thread)
        assert 0 < x.smoke_s < 180 and 0 < x.default_s <= 600, f"{x.notebook}: a default run over 10 minutes"
        assert set(x.needs) <= known and x.notebook not in x.needs
    assert lesson("20").title.startswith("SFT") and lesson("30_rgrpo").notebook == "30_rgrpo"
    with pytest.raises(KeyError, match="known"):
        lesson("99")


def test_the_series_fits_in_20_minutes():
    total = sum(x.default_s for x in LESSONS)
    assert total <= 20 * 60, (f"the recorded default runs take {total:.0f} s together, over 20 minutes: shorten a "
                              "lesson, or record a run on the reference machine (python -m r3lab.course.syllabus --times ...)")


def test_tables_and_objectives_render_every_lesson():
    table, goals = course_table(), objectives_markdown()
    for x in LESSONS:
        assert f"(notebooks/{x.notebook}.ipynb)" in table and x.minutes in table
        assert f"### {x.notebook}" in goals and all(o in goals for o in x.objectives)
    assert lesson("20").minutes == f"{lesson('20').default_s / 60:.1f} min"


def test_times_come_from_a_runners_results(tmp_path):
    good = tmp_path / "results.json"
    good.write_text(json.dumps([{"name": "00_build_vlir", "ok": True, "seconds": 38.2, "numbers": {}}]))
    assert times_from_run(good) == {"00_build_vlir": 38.2}
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": 1}')
    with pytest.raises(ValueError, match="bad.json"):
        times_from_run(bad)
    with pytest.raises(ValueError, match="notebooks run"):
        times_from_run(tmp_path / "missing.json")


def test_a_runs_times_are_recorded_in_their_column(tmp_path, monkeypatch):
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"lessons": {"00_build_vlir": {"default_s": 50, "smoke_s": 10}}}))
    run = tmp_path / "results.json"
    run.write_text(json.dumps([{"name": "00_build_vlir", "ok": True, "seconds": 12.34, "parameters": {"smoke": True}},
                               {"name": "20_sft", "ok": True, "seconds": 250.0, "parameters": {}},
                               {"name": "30_rgrpo", "ok": False, "seconds": 9.0, "parameters": {}}]))
    assert record_times(run, times) == {"00_build_vlir": 12.3, "20_sft": 250.0}  # a failed run records nothing
    data = json.loads(times.read_text())["lessons"]
    assert data["00_build_vlir"]["smoke_s"] == 12.3 and data["00_build_vlir"]["default_s"] == 50
    assert data["20_sft"]["default_s"] == 250.0 and str(run) in data["20_sft"]["source"]
    monkeypatch.setattr(syllabus, "TIMES", times)
    assert lesson("20").default_s == 250.0
    with pytest.raises(KeyError, match="record a run"):
        lesson("30").default_s
