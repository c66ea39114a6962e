"""Notebook 40 in a real JupyterLab, driven by Playwright in Debian's headless Chromium.

The set-up starts JupyterLab on loopback (random free port, token auth, a temporary root holding a
smoke-parameterised copy of the notebook, kernel `r3lab`, `R3LAB_WIDGETS=1` so the step player is the
live ipywidget even when CI is set). The test runs every cell from the Run menu, then drags the step
player's slider and checks that the kernel answered: readout, image and highlighted text all move.
Playwright never downloads a browser here: it launches /usr/bin/chromium (apt package `chromium`).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from r3lab.core import env
from r3lab.course.runner import NOTEBOOKS, ensure_kernel

from .. import HANG_S

WAIT_MS = HANG_S * 1000  # playwright's waits (ms): a bound for a hang only

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("R3LAB_CHROMIUM", "/usr/bin/chromium"))
# Known to work on this machine's closed network: no background connections, no GPU, a fresh profile.
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
NOTEBOOK = "40_explain_crops.ipynb"
RUN_TIMEOUT_S = HANG_S  # the whole notebook in smoke mode (about 30 s alone; several times that on a busy machine)


def _missing(reason: str):
    """Locally a missing browser is a skip; in CI (which installs it, see Makefile) it is a failure."""
    if env.IN_CI:
        pytest.fail(f"{reason} (CI must provide it: `make setup` installs chromium and playwright)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_copy(root: Path) -> Path:
    """A copy of notebook 40 whose injected parameters say smoke=True (pages exported under root), on kernel r3lab."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(NOTEBOOKS / NOTEBOOK))  # gives every cell the metadata papermill expects
    nb = parameterize_notebook(nb, {"smoke": True, "out": str(root / "html")}, kernel_name="r3lab", language="python")
    nb.metadata["kernelspec"] = {"name": "r3lab", "display_name": "r3lab (Python 3)", "language": "python"}
    path = root / NOTEBOOK
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base url, token) of a JupyterLab serving a temporary root; stopped and cleaned up afterwards."""
    pytest.importorskip("jupyterlab")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    _smoke_copy(root)
    ensure_kernel("r3lab")
    # Render every cell (JupyterLab 4 virtualises long notebooks by default) and skip the news toast.
    settings = tmp / "settings"
    for ext, body in [
        ("notebook-extension/tracker", {"windowingMode": "none"}),
        ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
    ]:
        f = settings / "@jupyterlab" / f"{ext}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(body))
    port, token = _free_port(), uuid.uuid4().hex
    # Live widgets although CI is set; Jupyter's user dirs in tmp (kernels still come from sys.prefix).
    environ = {
        **os.environ,
        "R3LAB_WIDGETS": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "IPYTHONDIR": str(tmp / "ipython"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--MappingKernelManager.default_kernel_name=r3lab",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
    ]
    if os.geteuid() == 0:  # CI runs as root
        cmd.append("--allow-root")
    log = open(tmp / "jupyter.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in {HANG_S} s:\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Playwright context on Debian's Chromium with an empty profile."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield ctx
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


# State of the step player on the page: slider readout and maximum, image source, highlighted step.
_PLAYER_STATE = """() => {
  const box = document.querySelector('.r3lab-step-player');
  if (!box) return null;
  const img = box.querySelector('img'), handle = box.querySelector('.noUi-handle');
  const hot = [...box.querySelectorAll('.r3-step')].find(s => (s.getAttribute('style') || '').includes('background'));
  return {readout: (box.querySelector('.widget-readout') || {}).textContent,
          max: handle ? Math.round(parseFloat(handle.getAttribute('aria-valuemax'))) : null,
          img: img ? img.src : null, hot: hot ? hot.dataset.step : null};
}"""


def _wait_for_step(page, step: str, not_img: str | None = None) -> dict:
    """Wait until readout and highlighted text show `step` (and the image changed from `not_img`)."""
    cond = f"s && s.readout === '{step}' && s.hot === '{step}'"
    if not_img is not None:
        cond += f" && s.img !== {json.dumps(not_img)}"
    page.wait_for_function(f"() => {{ const s = ({_PLAYER_STATE})(); return {cond}; }}", timeout=WAIT_MS)
    return page.evaluate(_PLAYER_STATE)


def test_step_player_renders_and_follows_the_slider(lab, browser):
    base, token, tmp = lab
    page = browser.new_page()
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded", timeout=WAIT_MS)
        # Wait for the notebook to open with its kernel idle, then Run > Run All Cells, as a person would.
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=WAIT_MS)
        page.wait_for_function("() => document.body.innerText.includes('r3lab (Python 3) | Idle')", timeout=WAIT_MS)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        # Finished: the check cell printed its line, or some cell raised.
        done = page.wait_for_function(
            """() => {
                 const outs = [...document.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent);
                 const err = outs.find(t => t.includes('Traceback (most recent call last)'));
                 if (err) return 'error: ' + err;
                 return outs.some(t => t.includes('all checks passed')) ? 'ok' : false;
               }""",
            timeout=RUN_TIMEOUT_S * 1000,
        ).json_value()
        assert done == "ok", done

        player = page.locator(".r3lab-step-player")
        assert player.count() == 1, "the step player cell should display exactly one live widget"
        player.scroll_into_view_if_needed()
        before = page.evaluate(_PLAYER_STATE)
        assert before["readout"] == "1" and before["hot"] == "1", before  # start=1 in the notebook
        assert before["img"] and before["max"] >= 2, before
        page.screenshot(path=str(tmp / "player-before.png"))

        # Drag the slider handle to the right end: the last step.
        handle = player.locator(".noUi-handle").first
        track = player.locator(".noUi-target").first
        hb, tb = handle.bounding_box(), track.bounding_box()
        page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
        page.mouse.down()
        page.mouse.move(tb["x"] + tb["width"] + 20, hb["y"] + hb["height"] / 2, steps=8)
        page.mouse.up()
        last = str(before["max"])
        after = _wait_for_step(page, last, not_img=before["img"])  # the kernel answered: new image and text
        page.screenshot(path=str(tmp / "player-after.png"))
        assert after["readout"] == last and after["hot"] == last and after["img"] != before["img"], (before, after)

        # And back with the keyboard: one step left.
        handle.focus()
        page.keyboard.press("ArrowLeft")
        _wait_for_step(page, str(int(last) - 1), not_img=after["img"])
    except Exception:
        page.screenshot(path=str(tmp / "failure.png"))
        print("browser console:\n" + "\n".join(console[-40:]))
        print("jupyter log tail:\n" + (tmp / "jupyter.log").read_text()[-3000:])
        raise
    finally:
        page.close()


# Figures of the output areas: decoded images, and plotly plots JupyterLab's extension drew (if it rendered
# the JSON rather than the PNG beside it); any text output that is a widget's repr.
_LAB_FIGURES = """() => {
  const outs = [...document.querySelectorAll('.jp-OutputArea-output')];
  const imgs = outs.flatMap(o => [...o.querySelectorAll('img')]).map(i => ({w: i.naturalWidth, done: i.complete}));
  const plots = outs.flatMap(o => [...o.querySelectorAll('.js-plotly-plot .main-svg')]).length;
  const reprs = outs.map(o => o.textContent).filter(t => /^\\s*(VBox|HBox|IntProgress)\\(/.test(t));
  return {imgs, plots, reprs, n: outs.length};
}"""


def test_an_executed_notebook_opens_whole_untrusted(lab, browser, executed):
    """What the runner wrote, opened in JupyterLab without trusting it: every figure shows, no widget repr."""
    base, token, tmp = lab
    _, result, _ = executed
    root = tmp / "root"
    shutil.copy2(result.output, root / "executed.ipynb")  # never run or trusted in this server
    page = browser.new_page()
    try:
        page.goto(f"{base}/lab/tree/executed.ipynb?token={token}", wait_until="domcontentloaded", timeout=WAIT_MS)
        page.wait_for_selector(".jp-NotebookPanel .jp-OutputArea-output", timeout=WAIT_MS)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output img')].length >= 2 && "
            "[...document.querySelectorAll('.jp-OutputArea-output img')].every(i => i.complete)",
            timeout=WAIT_MS,
        )
        state = page.evaluate(_LAB_FIGURES)
        page.screenshot(path=str(tmp / "executed-untrusted.png"), full_page=True)
        shown = [i for i in state["imgs"] if i["w"] > 0]
        # matplotlib and the step player's strip are images; plotly is its PNG or the extension's plot
        assert len(shown) + min(state["plots"], 1) >= 3 and len(shown) == len(state["imgs"]), state
        assert not state["reprs"], state
    finally:
        page.close()
