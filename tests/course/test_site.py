"""The site's sources: which notebook each lesson page shows, the lessons table, the API pages."""

import json

import nbformat

from r3lab.course.site import api_pages, lesson_sources, lessons_page


def _nb(path):
    nbformat.write(nbformat.v4.new_notebook(), str(path))
    return path


def test_lessons_come_from_the_run_where_it_has_them(tmp_path):
    src, run = tmp_path / "nbs", tmp_path / "run"
    src.mkdir()
    _nb(src / "00_a.ipynb"), _nb(src / "10_b.ipynb")
    (run / "00_a").mkdir(parents=True)
    _nb(run / "00_a" / "00_a.ipynb")
    assert lesson_sources(run, src) == [(run / "00_a" / "00_a.ipynb", True), (src / "10_b.ipynb", False)]
    assert lesson_sources(None, src) == [(src / "00_a.ipynb", False), (src / "10_b.ipynb", False)]
    (run / "results.json").write_text(
        json.dumps(
            [{"name": "00_a", "ok": True, "seconds": 90.0, "numbers": {"x": 1}, "headline": ["read_one: 0.5 → 0.8"]}]
        )
    )
    page = lessons_page(lesson_sources(run, src), run)
    assert "| [00_a](00_a.ipynb) | passed | 1.5 min | read_one: 0.5 → 0.8 |" in page
    assert "| [10_b](10_b.ipynb) | not run | – |" in page and "1.5 minutes" in page


def test_api_pages_document_every_module_of_a_room():
    page = api_pages(("course",))["course"]
    assert page.startswith("# r3lab.course") and "::: r3lab.course.lesson" in page and "::: r3lab.course.runner" in page
    assert "::: r3lab.course.site" in page and "__init__" not in page


def test_stage_lays_out_docs_lessons_kit_and_api(tmp_path, monkeypatch):
    from r3lab.course import site

    docs, src = tmp_path / "docs", tmp_path / "nbs"
    (docs / "instructor" / "solutions").mkdir(parents=True)
    src.mkdir()
    (docs / "index.md").write_text("# Home\n")
    (docs / "colab.md").write_text("# The course on Colab\n")
    (docs / "instructor" / "schedule.md").write_text("# A two-hour schedule\n")
    (docs / "guide").mkdir()
    for page in ("safety.md", "audit.md", "audit-cost.md", "a-new-page.md"):
        (docs / "guide" / page).write_text(f"# {page}\n")
    _nb(docs / "instructor" / "solutions" / "20_sft_solutions.ipynb")
    _nb(src / "00_a.ipynb")
    monkeypatch.setattr(site, "DOCS", docs)
    config = json.loads(site.stage(tmp_path / "site", None, tmp_path / "stage", ("course",), src).read_text())
    assert config["docs_dir"] == str(tmp_path / "stage") and config["INHERIT"].endswith("mkdocs.yml")
    nav = {list(item)[0]: list(item.values())[0] for item in config["nav"]}
    assert nav["Lessons"] == ["lessons/index.md", {"00_a": "lessons/00_a.ipynb"}]
    assert nav["Instructor's kit"] == [
        "instructor/index.md",
        "instructor/schedule.md",
        "instructor/solutions/20_sft_solutions.ipynb",
    ]
    # mkdocs.yml's guide entries whose pages exist, in its order and sections; a page it does not list comes last
    assert nav["Guide"][0] == "guide/safety.md" and nav["Guide"][-1] == "guide/a-new-page.md", nav["Guide"]
    section = next(e for e in nav["Guide"] if isinstance(e, dict))
    assert section == {"Did the crop matter?": ["guide/audit.md", "guide/audit-cost.md"]}
    assert nav["The course on Colab"] == "colab.md" and nav["API reference"] == [{"r3lab.course": "api/course.md"}]
    kit = (tmp_path / "stage" / "instructor" / "index.md").read_text()
    assert "[A two-hour schedule](schedule.md)" in kit and "(solutions/20_sft_solutions.ipynb)" in kit
    assert (tmp_path / "stage" / "lessons" / "00_a.ipynb").is_file()
