"""The step player: live widget moves through steps; headless gives a PNG strip of its key frames."""

import base64

import ipywidgets as w
import pytest

from r3lab.explain.capture import attention_maps
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz.widgets import StepPlayer, headless, step_player


@pytest.fixture(scope="module")
def setup():
    p = tiny_policy()
    t = toy_trajectory(p)
    return t, attention_maps(p, t, layers="all", queries="model")


def test_live_player_follows_the_slider(setup):
    t, maps = setup
    sp = step_player(t, maps, static=False, start=0)
    assert isinstance(sp.widget, w.VBox) and sp.slider.max == 3
    first = sp.image.value
    sp.slider.value = 2  # what a person dragging the slider does
    assert sp.step == 2 and sp.image.value != first and sp.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "zoomed crop 1" in sp.text.value and 'data-step="2" style="background' in sp.text.value
    sp.show(3)
    assert sp.slider.value == 3 and "&lt;answer&gt;red" in sp.text.value
    bundle = sp._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle
    with pytest.raises(ValueError, match="out of range"):
        sp.show(7)


def test_static_fallback(setup, monkeypatch):
    t, maps = setup
    monkeypatch.delenv("R3LAB_WIDGETS", raising=False)
    assert headless()  # pytest runs without a kernel
    sp = step_player(t, maps)
    assert sp.widget is None and sp.static
    b = sp._repr_mimebundle_()
    assert set(b) == {"image/png", "text/plain"}  # no HTML or script: untrusted JupyterLab strips them
    png = base64.b64decode(b["image/png"])
    assert png[:4] == b"\x89PNG" and "static" in b["text/plain"]
    frames = sp.key_frames()
    assert frames[0] == 0 and frames[-1] == len(sp.steps) - 1 and len(frames) <= 4
    assert all(sp.steps[k].kind == "image" for k in frames[1:-1])  # the zoomed crops between question and answer
    import io

    from PIL import Image

    one = Image.open(io.BytesIO(sp._render(0)))
    assert Image.open(io.BytesIO(png)).height == one.height * len(frames)  # the frames stacked
    assert sp.key_frames(1) == [len(sp.steps) - 1]
    with pytest.raises(ValueError, match="at least one"):
        sp.key_frames(0)
    monkeypatch.setenv("R3LAB_WIDGETS", "1")
    assert not headless()
    assert isinstance(StepPlayer(t).widget, w.VBox)
