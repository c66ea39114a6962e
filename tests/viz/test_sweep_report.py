"""sweep.html, sweep.csv and runs.csv of a miniature finished sweep: text from the data escaped, nothing fetched,
every point's numbers with intervals and chance, the comparisons, a plot per metric and setting, every run's status;
and the page in Chromium (whole, sortable, the hostile text never run)."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from r3lab.cli.app import main
from r3lab.core import env
from r3lab.sweep.results import load_sweep
from r3lab.testing.mini_sweeps import write_mini_sweep

HOSTILE = '<script>window.hostile = 1</script>"&'
CHROMIUM = Path(os.environ.get("R3LAB_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = write_mini_sweep(
        tmp_path_factory.mktemp("rep") / "sw",
        values=[0.0, 0.5, 1.0],
        seeds=(0, 1, 2),
        questions=30,
        base=0.3,
        effect=0.5,
        failed=1,
        label=HOSTILE,
    )
    assert main(["report", "sweep", str(folder)]) == 0
    return folder


def test_the_report_files(sweep):
    page = (sweep / "sweep.html").read_text()
    assert "<script>window.hostile" not in page and "&lt;script&gt;window.hostile" in page
    assert (
        "<script src" not in page
        and "<link" not in page
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert page.count("<svg") == 4  # read_one, compare_two, control accuracy and crop IoU against the one setting
    assert "overlaps chance" in page and "exit code 2" in page and "Holm-adjusted over the 2 point(s)" in page
    rows = list(csv.DictReader((sweep / "sweep.csv").open()))
    assert len(rows) == 3 * 4 and {r["metric"] for r in rows} == {
        "compare_two.accuracy",
        "control.accuracy",
        "read_one.accuracy",
        "crop_iou",
    }
    base = [r for r in rows if r["grid.reward-region-weight"] == "0.0"]
    assert all(r["diff"] == "" for r in base) and all(
        float(r["lo"]) <= float(r["mean"]) <= float(r["hi"]) for r in rows
    )
    top = next(r for r in rows if r["grid.reward-region-weight"] == "1.0" and r["metric"] == "read_one.accuracy")
    assert float(top["diff"]) > 0.2 and float(top["p_holm"]) < 0.05 and float(top["poi"]) > 0.6  # the known trend
    assert top["seeds"] == "2"  # its failed seed left out; the comparison paired on the two others
    runs = list(csv.DictReader((sweep / "runs.csv").open()))
    assert len(runs) == 9 and [r["state"] for r in runs].count("failed") == 1


def test_the_report_command_never_loads_torch(sweep, tmp_path):
    """A page of numbers: `r3lab report sweep` leaves torch (seconds to load) and the model code alone."""
    copy = shutil.copytree(sweep, tmp_path / "sw")
    code = (
        "import sys; from r3lab.cli.app import main; rc = main(['report', 'sweep', sys.argv[1]]); "
        "print('loaded:', sorted(m for m in ('torch', 'transformers') if m in sys.modules)); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "loaded: []" in done.stdout, done.stdout + done.stderr


def test_the_frame_is_one_row_per_run(sweep):
    frame = load_sweep(sweep).frame()
    assert len(frame) == 9 and list(frame.columns[:4]) == ["run", "id", "reward-region-weight", "seed"]
    assert frame["state"].tolist().count("done") == 8 and frame["read_one.accuracy"].isna().sum() == 1


def _browser():
    if not CHROMIUM.exists():
        if env.IN_CI:
            pytest.fail(f"{CHROMIUM} not found (CI must provide it: `make setup` installs chromium)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_the_page_opens_in_chromium_whole_and_sorts(sweep, tmp_path):
    sync = _browser()
    profile = tmp_path / "profile"
    with sync.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = ctx.new_page()
            fetched = []
            page.on("request", lambda r: fetched.append(r.url))
            page.goto((sweep / "sweep.html").as_uri(), wait_until="load")
            assert [u for u in fetched if not u.startswith("data:")] == [(sweep / "sweep.html").as_uri()]
            assert page.evaluate("() => window.hostile") is None
            sizes = page.evaluate("() => [...document.querySelectorAll('svg')].map(s => s.getBBox().width)")
            assert len(sizes) == 4 and all(w > 100 for w in sizes)  # every plot drawn
            table = page.locator("table.sortable").nth(1)  # the comparisons
            col = lambda: [float(x.split()[0]) for x in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]  # noqa: E731
            table.locator("th").nth(2).click()
            up = col()
            table.locator("th").nth(2).click()
            assert up == sorted(up) and col() == sorted(up, reverse=True) and len(up) == 8
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)
