"""The pre-class check: the machine's facts, the verdict, and lesson times scaled by the calibration."""

import json

from r3lab.course import preclass
from r3lab.course.syllabus import LESSONS


def test_the_facts_cover_what_the_lessons_need():
    names = [n for n, _, _ in preclass.facts()]
    for need in ("python", "packages", "memory", "free disk", "shipped checkpoints", "plotly figures"):
        assert need in names
    assert all(ok for n, _, ok in preclass.facts() if n in ("python", "packages"))


def test_lesson_times_are_scaled_by_the_calibration_against_the_reference(tmp_path, monkeypatch):
    times = tmp_path / "times.json"
    times.write_text(
        json.dumps(
            {
                "calibration": {"cpu_s": 10.0},
                "lessons": {x.notebook: {"default_s": 60.0, "cpu_s": 50.0} for x in LESSONS},
            }
        )
    )
    monkeypatch.setattr(preclass, "calibrate", lambda: (20.0, 30.0))  # this machine: half as fast
    report = preclass.run_check(times=times)
    assert report.ok and report.factor == 2.0
    assert all(v == 100.0 for v in report.projected.values())  # 2 x the recorded CPU seconds
    text = "\n".join(report.lines())
    assert "2.0x the reference machine's 10.0 s" in text and text.endswith("the machine can run the course")
    preclass.record_calibration(7.5, times)
    assert json.loads(times.read_text())["calibration"]["cpu_s"] == 7.5


def test_a_machine_missing_something_is_told_what(monkeypatch):
    monkeypatch.setattr(preclass, "facts", lambda root=None: [("python", "3.9.1", False), ("memory", "8 GB", True)])
    report = preclass.run_check()
    assert not report.ok and report.calibration_s is None  # no timing on a machine that cannot run it
    assert report.lines()[-1] == "the machine cannot run the course as it is: python (3.9.1)"
