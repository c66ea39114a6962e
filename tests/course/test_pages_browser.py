"""Executed notebooks open whole: the runner's HTML page and the site's lesson page, in Debian's Chromium.

A small notebook runs through the runner as the lessons do (headless kernel): a matplotlib figure, a plotly
figure (the `r3lab` renderer: a PNG by kaleido), the step player (a strip of frames) and `report`. Its page
and the site built from that run folder must show every figure: each inline image decoded with a natural
width > 0. Without a browser only the page-level checks run.
"""

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from r3lab.core import env
from r3lab.course import runner as nbr

from .. import HANG_S

WAIT_MS = HANG_S * 1000  # playwright's waits (ms): a bound for a hang only

CHROMIUM = Path(os.environ.get("R3LAB_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_run_folder_holds_the_page_and_the_page_every_figure(executed):
    out, result, _ = executed
    assert result.page == out / "00_figures" / "00_figures.html" and not result.oversize
    nb = nbformat.read(str(result.output), as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 3, [sorted(o.get("data", {})) for o in outputs]  # matplotlib, plotly, step player
    assert not any("widget-view" in k for o in outputs for k in o.get("data", {}))  # no stateless widget
    assert not any("plotly.min.js" in str(o) or "require.config" in str(o) for o in outputs)  # no plotly.js inlined
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert "a library warning nobody filtered" in stderr  # what setup does not filter stays visible
    assert result.numbers == {"answer": 42, "share": 0.5}
    page = result.page.read_text()
    assert "R3LAB_REPORT" not in page and page.count("data:image/png;base64") >= 3
    assert result.page.stat().st_size < nbr.MAX_BYTES and result.output.stat().st_size < nbr.MAX_BYTES


def _browser():
    if not CHROMIUM.exists():
        if env.IN_CI:
            pytest.fail(f"{CHROMIUM} not found (CI must provide it: `make setup` installs chromium)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api")


# Inline images (data: URIs; the Binder badge is the network's) and whether each decoded.
_IMAGES = """() => [...document.images].filter(i => i.src.startsWith('data:'))
                   .map(i => ({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}))"""


def _shown_images(page_url: str, tmp: Path, width: dict | None = None) -> list[dict]:
    """The page's inline images as decoded; `width`, when given, receives the notebook's rendered width."""
    sync = _browser()
    profile = tmp / "chromium-profile"
    with sync.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1600, "height": 900},
        )
        try:
            page = ctx.new_page()
            page.goto(page_url, wait_until="load", timeout=WAIT_MS)
            page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=WAIT_MS)
            page.screenshot(path=str(tmp / "page.png"), full_page=True)  # kept with the test's tmp folder
            if width is not None:
                width["notebook"] = page.evaluate(
                    "() => { const w = document.querySelector('.jupyter-wrapper'); "
                    "return w ? w.getBoundingClientRect().width : -1 }"
                )
            return page.evaluate(_IMAGES)
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.browser
def test_the_executed_notebook_page_shows_its_figures(executed, tmp_path):
    _, result, _ = executed
    images = _shown_images(result.page.as_uri(), tmp_path)
    assert len(images) >= 3 and all(i["w"] > 0 and i["h"] > 0 for i in images), images


@pytest.mark.browser
def test_the_site_lesson_page_shows_its_figures(executed, tmp_path):
    pytest.importorskip("mkdocs")
    from r3lab.course.site import build_site

    out, result, folder = executed
    index = build_site(out, tmp_path / "site", rooms=("course",), folder=folder)
    lesson = tmp_path / "site" / "lessons" / "00_figures" / "index.html"
    assert index.is_file() and lesson.is_file()
    assert "00_figures" in (tmp_path / "site" / "lessons" / "index.html").read_text()  # the lessons table
    api = (tmp_path / "site" / "api" / "course" / "index.html").read_text()
    assert "r3lab.course.lesson.setup" in api and "autoreload in a live kernel" in api  # from the docstrings
    width = {}
    images = _shown_images(lesson.as_uri(), tmp_path, width)
    assert len(images) >= 3 and all(i["w"] > 0 and i["h"] > 0 for i in images), images
    assert width["notebook"] > 0.8 * 1600, width  # the lesson uses the window's width, not a 700-px column
