"""Figures and tables that survive being saved: the `r3lab` plotly renderer's bundle and HTML tables."""

import base64
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from r3lab.viz import static
from r3lab.viz.static import Table, explanations_table, markdown_table, table


def test_the_bundle_holds_a_png_and_small_json_never_plotly_js(monkeypatch):
    monkeypatch.setattr(static, "figure_png", lambda fig: b"\x89PNG fake")
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout=dict(title="a <b>title</b>"))
    b = static.static_bundle(fig.to_dict())
    assert base64.b64decode(b["image/png"]) == b"\x89PNG fake" and "application/vnd.plotly.v1+json" in b
    assert "text/html" not in b and b["text/plain"] == "<plotly figure: a <b>title</b>>"
    monkeypatch.setattr(static, "MAX_JSON_BYTES", 10)  # a big figure keeps only its image
    assert "application/vnd.plotly.v1+json" not in static.static_bundle(fig.to_dict())


def test_a_figure_kaleido_fails_on_says_why_and_keeps_the_json(monkeypatch):
    def broken(fig):
        raise RuntimeError("plotly.js threw")

    monkeypatch.setattr(static, "figure_png", broken)
    b = static.static_bundle(go.Figure().to_dict())
    assert "image/png" not in b and "plotly.js threw" in b["text/plain"]
    assert "application/vnd.plotly.v1+json" in b


@pytest.fixture
def fresh(monkeypatch):
    """The module's kept browser forgotten: each test starts as a new kernel would."""
    monkeypatch.setattr(static, "_state", {"drawer": None, "failed": ""})
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.delenv("R3LAB_CHROMIUM", raising=False)
    yield
    static._stop()


def test_without_a_browser_matplotlib_draws_the_png_at_once(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("R3LAB_CHROMIUM", str(tmp_path / "nowhere"))
    path, why = static.find_browser()
    assert path is None and "R3LAB_CHROMIUM" in why and "not an executable" in why
    with pytest.raises(static.BrowserMissing, match="R3LAB_CHROMIUM"):
        static.figure_png(go.Figure())
    assert static.figure_backend().startswith("matplotlib (no browser for kaleido: R3LAB_CHROMIUM=")
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout=dict(width=300, height=200))
    b = static.static_bundle(fig.to_dict())
    png = base64.b64decode(b["image/png"])
    assert png[:4] == b"\x89PNG" and "no static image" not in b["text/plain"]


def test_the_browser_is_looked_for_where_the_environment_says(fresh, monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    assert static.find_browser() == (str(fake), "BROWSER_PATH")
    monkeypatch.setenv("R3LAB_CHROMIUM", str(tmp_path / "other"))  # the first one set decides
    assert static.find_browser()[0] is None


@pytest.mark.parametrize("spawn_s", [0.0, 1.5], ids=["prompt_spawn", "spawn_later_than_the_bound"])
def test_a_browser_that_never_answers_is_given_up_on_and_killed(fresh, monkeypatch, tmp_path, spawn_s):
    import subprocess
    import threading
    import time

    pids = tmp_path / "pids"
    fake = tmp_path / "chromium"  # starts, never speaks the devtools protocol
    fake.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 300\n")
    fake.chmod(0o755)
    monkeypatch.setenv("R3LAB_CHROMIUM", str(fake))
    monkeypatch.setattr(static, "START_S", 1.0)
    popen = subprocess.Popen
    spawned = []

    def slow_popen(args, *a, **k):  # a loaded machine: the browser starts after the start's bound has passed
        if str(fake) not in map(str, args):
            return popen(args, *a, **k)
        time.sleep(spawn_s)
        proc = popen(args, *a, **k)
        spawned.append(proc.pid)
        return proc

    monkeypatch.setattr(subprocess, "Popen", slow_popen)
    raised = []

    def draw():
        try:
            static.figure_png(go.Figure())
        except static.BrowserMissing as e:
            raised.append(str(e))

    worker = threading.Thread(target=draw, daemon=True)
    worker.start()
    worker.join(60)  # a guard against the hang this test is about, not a speed test
    assert not worker.is_alive(), "figure_png waited on a browser that never answered"
    assert raised and "within 1 s" in raised[0] and str(fake) in raised[0]
    with pytest.raises(static.BrowserMissing, match="within 1 s"):  # not waited on twice
        static.figure_png(go.Figure())
    assert static.static_bundle(go.Figure().to_dict())["image/png"]  # matplotlib draws it meanwhile
    deadline = time.monotonic() + 60  # a bound for a hang only: the late start happens after spawn_s
    while not spawned and time.monotonic() < deadline:
        time.sleep(0.1)  # the browser started late (a leak unless it is killed) has been started
    assert spawned, "the browser was never started"
    started = set(spawned) | (set(map(int, pids.read_text().split())) if pids.exists() else set())
    deadline = time.monotonic() + 60  # a bound for a hang only: a leaked browser would sleep 300 s
    while (alive := [pid for pid in started if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)  # a killed process may take a moment to be reaped by whoever inherits it
    assert not alive, f"the browser's processes {alive} outlived figure_png"


def _running(pid: int) -> bool:
    """Whether `pid` is a process that still runs (a zombie, killed and waiting to be reaped, does not)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return True


def test_register_renderer_makes_figures_display_through_it(monkeypatch):
    import plotly.io as pio

    monkeypatch.setattr(static, "figure_png", lambda fig: b"png")
    before = pio.renderers.default
    try:
        assert static.register_renderer() == "r3lab" and pio.renderers.default == "r3lab"
        assert set(go.Figure()._repr_mimebundle_()) >= {"image/png", "text/plain"}
    finally:
        pio.renderers.default = before


def test_tables_render_as_escaped_html_and_aligned_text():
    t = table([{"name": "<b>", "x": 0.123456, "n": 3}, {"name": "b", "x": float("nan")}], caption="c & d")
    h = t._repr_html_()
    assert "<th>name</th><th>x</th><th>n</th>" in h and "&lt;b&gt;" in h and "<td>0.123</td>" in h
    assert "<td>–</td>" in h and "<caption>c &amp; d</caption>" in h and len(t) == 2
    assert str(t).splitlines()[1].split() == ["name", "x", "n"]
    two = table({"a": 1, "b": "x"})
    assert two.columns == ["name", "value"] and two.rows[1] == {"name": "b", "value": "x"}


def test_markdown_tables_become_tables():
    t = markdown_table("**vstar**: accuracy 0.5\n\n| category | n |\n|---|---|\n| a | 2 |\n| all | 5 |")
    assert t.columns == ["category", "n"] and t.rows == [{"category": "a", "n": "2"}, {"category": "all", "n": "5"}]
    assert t.caption == "vstar: accuracy 0.5"
    with pytest.raises(ValueError, match="separator"):
        markdown_table("no table here")


def test_explanations_table_has_a_row_per_crop_decision():
    e = SimpleNamespace(
        event=0,
        gt_iou=0.9,
        needed=True,
        attention=SimpleNamespace(mass_in_box=0.4, concentration=2.0, top_in_gt=True),
        importance=SimpleNamespace(effect={"blank": 0.3, "coarse": None, "other": 0.1}),
    )
    t = explanations_table({"s1": [e, e]})
    assert isinstance(t, Table) and len(t) == 2 and t.rows[0]["importance (blank)"] == 0.3
    assert t.columns[:3] == ["sample", "crop", "IoU"] and "<td>–</td>" in t._repr_html_()


def test_a_browser_that_dies_leaves_the_notebook_quiet_and_matplotlib_draws(fresh, monkeypatch, caplog):
    """A kept browser that dies (killed by the system on a loaded machine): choreographer's watchdog must not put
    its "closed by watchdog" line on the notebook's stderr; the next figure is drawn all the same."""
    import os
    import signal
    import time

    if static.find_browser()[0] is None:
        pytest.skip("no Chromium on this machine")
    static.figure_png(go.Figure())  # a browser kept and answering
    os.killpg(static._state["drawer"].kaleido.subprocess.pid, signal.SIGKILL)
    time.sleep(3)  # the watchdog's wait returns once the process is gone; it logs then
    assert not [r for r in caplog.records if "watchdog" in r.getMessage()]
    monkeypatch.setattr(static, "DRAW_S", 2.0)
    assert static.static_bundle(go.Figure().to_dict())["image/png"]
