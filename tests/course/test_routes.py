"""Every route a class takes, rebuilt from the repository alone (routes/, binder/verify.sh; `make routes` runs all
three with every lesson). CI runs the route the clone-based suite cannot stand in for: a wheel built from these
files and installed with its course outside the clone, two lessons run from `r3lab notebooks where --copy`
(measured: 11.5 min with four lessons, the machine shared at load 11; most of it is pip installing `[course]`)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from .. import HANG_S

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "colab": ROOT / "routes" / "colab.sh",
    "wheel": ROOT / "routes" / "wheel.sh",
    "binder": ROOT / "binder" / "verify.sh",
}
CI_LESSONS = "47 50 60"  # shipped audit results from share/r3lab (47); the extra's scipy (50) and TRL (60)


def test_make_routes_runs_every_route_and_each_runs_every_lesson():
    every = (ROOT / "routes" / "all.sh").read_text()
    assert all(f"{name}:{path.relative_to(ROOT)}" in every for name, path in SCRIPTS.items())
    assert re.search(r"^routes: \$\(STAMP\)\n\tbash routes/all.sh", (ROOT / "Makefile").read_text(), re.M)
    for name, path in SCRIPTS.items():
        text = path.read_text()
        assert "common.sh" in text and re.search(r"^run_lessons ", text, re.M), name
        assert "notebooks run 00" not in text, f"{name}: every lesson, not only 00"
    common = (ROOT / "routes" / "common.sh").read_text()
    assert "PIP_NO_CACHE_DIR=1" in common and "-p smoke True" in common and "papermill" in common
    assert "R3LAB_CHROMIUM=" in common  # no browser: plotly's figures are drawn as a student's kernel draws them
    assert "[course]" in SCRIPTS["wheel"].read_text() and re.search(r'pip"? wheel', SCRIPTS["wheel"].read_text())
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"`make routes`[^\n]*\d+ min", readme), "the README states how long make routes takes"


@pytest.mark.routes
@pytest.mark.slow
def test_the_wheel_route_installs_outside_the_clone_and_runs_lessons(tmp_path):
    env = {**os.environ, "ROUTE_LESSONS": CI_LESSONS}
    proc = subprocess.run(
        ["bash", str(SCRIPTS["wheel"]), str(tmp_path / "wheel")],
        capture_output=True,
        text=True,
        timeout=6 * HANG_S,
        env=env,
    )  # a bound for a hang only
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, (
        f"routes/wheel.sh failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    )
    n = len(CI_LESSONS.split())
    assert f"done: the wheel route {n}/{n}" in proc.stdout
    assert "site-packages/r3lab/__init__.py" in proc.stdout  # the installed wheel, not the clone
    assert str(tmp_path / "wheel" / "venv" / "share" / "r3lab" / "notebooks") in proc.stdout


def test_make_routes_times_are_recorded_and_stated_from_the_record(tmp_path):
    import json
    import shutil

    from r3lab.course import syllabus, timing

    times = tmp_path / "times.json"
    shutil.copy(timing.TIMES, times)
    runs = tmp_path / "routes.json"
    runs.write_text(
        json.dumps(
            {
                "colab": {"seconds": 600, "ok": True, "load": 1.0},
                "wheel": {"seconds": 300, "ok": True},
                "binder": {"seconds": 900, "ok": False},
            }
        )
    )
    assert timing.record_routes(runs, times) == {"colab": 600, "wheel": 300}  # a failed route records nothing
    assert timing.route_seconds("wheel", times) == 300
    recorded = json.loads(times.read_text())["routes"]
    assert recorded["colab"] == 600 and recorded.get("binder") == json.loads(timing.TIMES.read_text())["routes"].get(
        "binder"
    )
    with pytest.raises(ValueError, match="routes.json"):
        timing.record_routes(tmp_path / "nothing.json", times)
    total = timing.route_seconds()
    assert syllabus.phrase("time", "routes") == timing.fmt(total) and total == sum(
        json.loads(timing.TIMES.read_text())["routes"].values()
    )
