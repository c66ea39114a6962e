import random

import numpy as np
import torch

import r3lab
from r3lab.core import env


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    env.seed_everything(123)
    a = draw()
    env.seed_everything(123)
    assert draw() == a
    env.seed_everything(124)
    assert draw() != a


def test_configure_display_headless_choices(monkeypatch):
    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    info = r3lab.configure_display()
    import plotly.io as pio

    assert info["matplotlib_backend"].lower() == "agg"
    assert pio.renderers.default == info["plotly_renderer"] == "json"
    info = r3lab.configure_display(plotly_renderer="notebook")
    assert pio.renderers.default == "notebook"


def test_progress_disabled_follows_env(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert env.progress_disabled()
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not env.progress_disabled()


def test_describe_and_assets():
    d = r3lab.describe()
    import transformers

    assert d["torch"] == torch.__version__ and d["transformers"] == transformers.__version__
    assert d["device"] in ("cpu", "cuda")
    assert env.assets_dir().is_dir()


def test_configure_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert env.configure_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert env.configure_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        if not torch.cuda.is_available():
            assert env.configure_threads() == 1
    finally:
        torch.set_num_threads(before)
