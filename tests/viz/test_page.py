"""export_html: one self-contained page; escaped text; script-safe JSON; renders in headless Chromium."""

import json
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

from r3lab.core.env import IN_CI
from r3lab.explain.capture import attention_maps
from r3lab.explain.crops import explain_crops
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz.page import export_html, trajectory_html

from .. import HANG_S

EVIL = '</script><script>window.PWNED=1</script><img src=x onerror=alert(1)> & "quotes"'


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    p = tiny_policy()
    t = toy_trajectory(p)
    t.question = "What colour is the disc? " + EVIL
    t.pieces[3].text = t.pieces[3].text.replace("I need", EVIL + " I need")
    maps = attention_maps(p, t, layers="all", queries="model")
    path = export_html(t, tmp_path_factory.mktemp("html") / "traj.html", maps=maps, explanations=explain_crops(p, t))
    return t, path, path.read_text()


def test_self_contained_and_escaped(page):
    t, path, html = page
    assert html.count("<script") == 2 and html.count("</script>") == 2  # only ours: the evil text is escaped
    assert "<script>window.PWNED" not in html and "&lt;/script&gt;&lt;script&gt;window.PWNED" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror" in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)  # nothing fetched from a network
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("data:image/png;base64,") == 3  # main image, heatmap, crop thumbnail
    found = re.search(r'<script id="trajectory-data" type="application/json">(.*?)</script>', html, re.S)
    data = json.loads(found.group(1))
    assert EVIL in data["steps"][1]["text"] and data["final_answer"] == "red"
    assert 'data-crop="1"' in html and 'id="explanations"' in html


def test_bad_path_and_missing_pixels(tmp_path):
    p = tiny_policy()
    t = toy_trajectory(p)
    with pytest.raises(ValueError, match=r"\.html"):
        export_html(t, tmp_path / "x.png")
    t.main.image = None
    with pytest.raises(ValueError, match="no pixels"):
        trajectory_html(t)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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


def _chromium(args, profile):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=HANG_S
    )


@pytest.mark.browser
def test_renders_in_headless_chromium(page):
    if CHROMIUM is None:
        msg = "needs Debian's chromium: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(msg + " (CI must install it before the tests)")
        pytest.skip(msg)
    t, path, _ = page
    with tempfile.TemporaryDirectory() as profile:
        dom = _chromium(["--dump-dom", path.as_uri()], profile).stdout
    assert 'id="main-image"' in dom and dom.count('class="crop-box"') == 1
    assert dom.count('class="step ') == 4 and "bbox_2d" in dom
    assert "step 3 / 3" in dom  # the inline script ran (it writes the step label)
    assert "<script>window.PWNED" not in dom  # the model's text stayed text
    shot = path.with_suffix(".png")
    with tempfile.TemporaryDirectory() as profile:
        _chromium(["--window-size=1100,700", "--hide-scrollbars", f"--screenshot={shot}", path.as_uri()], profile)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # the figure sits at the top left (16 px margin, under the title and controls); the main image fills it
    w, h = t.main.image.size
    dw = min(560, max(w, 320))
    dh = round(dw * h / w)
    top = next(y for y in range(60, 200) if (np.abs(img[y, 16 : 16 + dw] - 255).sum(-1) > 30).mean() > 0.9)
    fig = img[top : top + dh, 16 : 16 + dw]
    assert (np.abs(fig - 255).sum(-1) > 30).mean() > 0.9  # non-blank: the image is there
    red = (fig[..., 0] > 180) & (fig[..., 1] < 80) & (fig[..., 2] < 80)
    assert red.mean() > 0.03  # the red disc
    # the box outline (crop colour #e6194b) is drawn around the disc
    outline = np.abs(fig - np.array([230, 25, 75])).sum(-1) < 60
    assert outline.sum() > 50
    text = img[top:, 16 + dw + 10 :]
    assert (text.sum(-1) < 300).sum() > 500  # dark text pixels of the step list
