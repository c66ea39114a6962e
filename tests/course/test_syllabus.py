"""The syllabus: one lesson per notebook, its objectives and measured times, the README tables drawn from it."""
import json

import pytest

from r3lab.course import runner
from r3lab.course.syllabus import LESSONS, course_table, lesson, objectives_markdown, times_from_run


def test_one_lesson_per_notebook_in_order_with_objectives_and_times():
    assert [x.notebook for x in LESSONS] == [p.stem for p in runner.find_notebooks()]
    known = {x.notebook for x in LESSONS}
    for x in LESSONS:
        assert x.objectives and all(o and o[0].islower() for o in x.objectives), x.notebook
        assert 0 < x.smoke_s < 180 and 0 < x.default_s <= 300, f"{x.notebook}: a default run over 5 minutes"
        assert set(x.needs) <= known and x.notebook not in x.needs
    assert sum(x.default_s for x in LESSONS) <= 15 * 60  # the whole series in 15 minutes
    assert lesson("20").title.startswith("SFT") and lesson("30_rgrpo").notebook == "30_rgrpo"
    with pytest.raises(KeyError, match="known"):
        lesson("99")


def test_tables_and_objectives_render_every_lesson():
    table, goals = course_table(), objectives_markdown()
    for x in LESSONS:
        assert f"(notebooks/{x.notebook}.ipynb)" in table and x.minutes in table
        assert f"### {x.notebook}" in goals and all(o in goals for o in x.objectives)
    assert lesson("20").minutes == "5.0 min" and lesson("10").minutes == "13 s"


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
