"""The syllabus: one lesson per notebook, its objectives and measured times, and every time statement drawn from it."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from r3lab.course import catalog, runner, syllabus, timing
from r3lab.course.exercises import META
from r3lab.course.syllabus import (
    LESSONS,
    course_table,
    fill_spans,
    lesson,
    objectives_markdown,
    phrase,
    record_times,
    stale,
    times_from_run,
)

ROOT = Path(__file__).resolve().parents[2]


def test_one_lesson_per_notebook_in_order_with_objectives_and_times():
    assert [x.notebook for x in LESSONS] == [p.stem for p in runner.find_notebooks()]
    known = {x.notebook for x in LESSONS}
    for x in LESSONS:
        assert x.objectives and all(o and o[0].islower() for o in x.objectives), x.notebook
        assert 0 < x.smoke_s < 180 and 0 < x.default_s <= 240, f"{x.notebook}: a default run over 4 minutes"
        assert set(x.needs) <= known and x.notebook not in x.needs
    assert lesson("20").title.startswith("SFT") and lesson("30_rgrpo").notebook == "30_rgrpo"
    with pytest.raises(KeyError, match="known"):
        lesson("99")


def test_the_series_fits_in_12_minutes():
    total = sum(x.default_s for x in LESSONS)
    assert total <= 12 * 60, (
        f"the recorded default runs take {total:.0f} s together, over 12 minutes: shorten a "
        "lesson, or record a run on the reference machine (r3lab notebooks run --record-times)"
    )


def test_tables_and_objectives_render_every_lesson():
    table, goals = course_table(), objectives_markdown()
    for x in LESSONS:
        assert f"(notebooks/{x.notebook}.ipynb)" in table and x.minutes in table
        assert f"### {x.notebook}" in goals and all(o in goals for o in x.objectives)
    assert lesson("20").minutes == timing.fmt(lesson("20").default_s)
    assert f"The whole series, default parameters: {phrase('time', 'series')}" in table


def test_spans_are_filled_from_the_times(tmp_path, monkeypatch):
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"lessons": {x.notebook: {"default_s": 30.0, "smoke_s": 10.0} for x in LESSONS}}))
    monkeypatch.setattr(catalog, "TIMES", times)  # the one the lessons and the syllabus read
    text = (
        "20 takes <!-- time:20 -->ten minutes<!-- /time --> (<!-- time:20:smoke -->?<!-- /time --> in CI); "
        "<!-- count:lessons -->eight<!-- /count --> lessons, <!-- time:series -->?<!-- /time --> in all; "
        "GPU: <!-- time:20:gpu -->?<!-- /time -->"
    )
    assert fill_spans(text) == (
        f"20 takes <!-- time:20 -->30 s<!-- /time --> (<!-- time:20:smoke -->10 s<!-- /time --> in CI); "
        f"<!-- count:lessons -->{timing.number_word(len(LESSONS))}<!-- /count --> lessons, "
        f"<!-- time:series -->{timing.fmt(30.0 * len(LESSONS))}<!-- /time --> in all; "
        "GPU: <!-- time:20:gpu -->not measured yet<!-- /time -->"
    )
    with pytest.raises(ValueError, match="time:NN"):
        fill_spans("<!-- time:20:weekly -->x<!-- /time -->")
    with pytest.raises(KeyError, match="no lesson"):
        fill_spans("<!-- time:99 -->x<!-- /time -->")


def test_a_gpu_column_appears_once_a_gpu_ran_the_series(tmp_path, monkeypatch):
    times = tmp_path / "times.json"
    times.write_text(
        json.dumps({"lessons": {x.notebook: {"default_s": 60.0, "smoke_s": 10.0, "gpu_s": 6.0} for x in LESSONS}})
    )
    monkeypatch.setattr(catalog, "TIMES", times)  # the one the lessons and the syllabus read
    table = course_table()
    assert "| 2-core CPU | GPU | CI (smoke) |" in table and "| 1.0 min | 6 s | 10 s |" in table
    assert "with a GPU" in table


def test_every_generated_file_is_up_to_date():
    assert not stale(ROOT), "run: python -m r3lab.course.syllabus (after recording a run's times)"


# A stated minute or second count: "3 min", "4.5 minutes", "25–43 s", "ten minutes", "under a minute", "one-minute",
# "a quarter of an hour" (class lengths in hours, "a two-hour lab", are a plan, not a measurement)
DURATION = re.compile(
    r"(?i)(?<![\w.])\d+(?:[.,]\d+)?(?:\s*[–-]\s*\d+(?:[.,]\d+)?)?\s*(?:s|secs?|seconds?|min|mins|minutes?)\b"
    r"|\b(?:a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|a few|several)"
    r"[ -](?:minutes?|seconds)\b|\bquarter of an hour|\bhalf an hour"
)


def _course_texts():
    """(name, text) of everything a student or teacher reads about the course's time: the README's course
    sections, notebooks/README.md, docs/index.md, docs/colab.md, the instructor's pages, and every lesson's and
    solution's markdown."""
    readme = (ROOT / "README.md").read_text()
    yield "README.md", readme.split("## The miniature replication")[0]
    kit = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "docs" / "instructor").glob("*.md")
        if p.name not in ("objectives.md", "exercises.md", "quizzes.md")
    )  # generated whole
    for rel in ("notebooks/README.md", "docs/index.md", "docs/colab.md", *kit):
        yield rel, (ROOT / rel).read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "notebooks" / "solutions").glob("*.ipynb")
    ):
        nb = nbformat.read(str(path), as_version=4)
        yield str(path.relative_to(ROOT)), "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_no_time_is_written_by_hand():
    found = []
    for name, text in _course_texts():
        text = syllabus.SPAN.sub("", text)  # generated from times.json
        text = META.sub("", text)  # an exercise's budget: a student's minutes of work, a plan
        for start, end in syllabus.BLOCKS.values():  # the generated tables
            if start in text and end in text:
                text = text.split(start)[0] + text.split(end, 1)[-1]
        found += [f"{name}: {m.group(0)!r}" for m in DURATION.finditer(text)]
    assert not found, (
        "durations written by hand (use a span, <!-- time:NN -->...<!-- /time -->, filled from "
        "times.json by python -m r3lab.course.syllabus):\n" + "\n".join(found)
    )


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
    gpu = {"gpu": "NVIDIA H200", "cpus": 16}
    run.write_text(
        json.dumps(
            [
                {"name": "00_build_vlir", "ok": True, "seconds": 12.34, "parameters": {"smoke": True}},
                {
                    "name": "20_sft",
                    "ok": True,
                    "seconds": 250.0,
                    "cpu_seconds": 240.0,
                    "parameters": {},
                    "machine": {"cpus": 2, "load": 1.5},
                },
                {"name": "10_interleaved_inference", "ok": True, "seconds": 3.0, "parameters": {}, "machine": gpu},
                {
                    "name": "40_explain_crops",
                    "ok": True,
                    "seconds": 30.0,
                    "parameters": {"device": "cpu"},
                    "machine": gpu,
                },
                {"name": "30_rgrpo", "ok": False, "seconds": 9.0, "parameters": {}},
            ]
        )
    )
    assert record_times(run, times) == {
        "00_build_vlir": 12.3,
        "20_sft": 250.0,
        "10_interleaved_inference": 3.0,
        "40_explain_crops": 30.0,
    }  # a failed run records nothing
    data = json.loads(times.read_text())["lessons"]
    assert data["00_build_vlir"]["smoke_s"] == 12.3 and data["00_build_vlir"]["default_s"] == 50
    assert data["20_sft"] == {
        "default_s": 250.0,
        "cpu_s": 240.0,
        "source": {"default_s": f"recorded from {run} (2 CPUs, load 1.5)"},
    }
    assert data["10_interleaved_inference"]["gpu_s"] == 3.0 and "default_s" not in data["10_interleaved_inference"]
    assert data["40_explain_crops"]["default_s"] == 30.0  # device="cpu" on a GPU machine: a CPU run
    monkeypatch.setattr(catalog, "TIMES", times)  # the one the lessons and the syllabus read
    assert lesson("20").default_s == 250.0 and lesson("20").cpu_s == 240.0 and lesson("10").gpu_s == 3.0
    with pytest.raises(KeyError, match="record a run"):
        _ = lesson("30").default_s  # a property that reads times.json


def test_every_schedule_slot_holds_its_lesson_with_room_to_spare():
    text = (ROOT / "docs" / "instructor" / "schedule.md").read_text()
    rows = [(int(h) * 60 + int(m), what) for h, m, what in re.findall(r"^\| (\d+):(\d\d) \| ([^|]*) \|", text, re.M)]
    assert len(rows) >= 8 and rows == sorted(rows)
    lessons = 0
    for (start, what), (end, _) in zip(rows, rows[1:]):
        if m := re.match(r"(\d\d) · ", what):
            lessons += 1
            need = 1.5 * lesson(m[1]).default_s / 60
            assert end - start >= need, f"{what}: {end - start} min for a lesson that runs {lesson(m[1]).minutes}"
    assert lessons >= 7
    slotted = {n for _, what in rows for n in re.findall(r"\b(\d\d)\b", what)}
    assert not {x.notebook[:2] for x in LESSONS} - slotted, "every lesson needs a slot in the schedule"
