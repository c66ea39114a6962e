"""What every lesson shares: its set-up cell, its smoke sizes, its starting policy and its key numbers."""

import pytest
import torch

from r3lab.course import lesson
from r3lab.course.lesson import REPORT_MIME, SMOKE, load_benchmark, report, setup, sizes, start_policy
from r3lab.course.runner import find_notebooks


def test_smoke_mode_swaps_in_the_small_sizes_and_nothing_else():
    full = sizes(
        "30_rgrpo",
        False,
        n_train=400,
        n_eval=16,
        steps=20,
        batch_size=16,
        group_size=4,
        sft_steps=100,
        max_new_tokens=64,
        shown=4,
    )
    small = sizes("30_rgrpo", True, **vars(full))
    assert vars(full)["steps"] == 20 and small.steps == SMOKE["30_rgrpo"]["steps"] == 2
    assert {k: v for k, v in vars(small).items() if k not in SMOKE["30_rgrpo"]} == {
        k: v for k, v in vars(full).items() if k not in SMOKE["30_rgrpo"]
    }
    with pytest.raises(ValueError, match="needs"):
        sizes("30_rgrpo", True, steps=20)  # a size the table shrinks must be given


def test_the_smoke_table_names_real_lessons_and_their_parameters():
    from r3lab.course.runner import declared

    by_name = {p.stem: p for p in find_notebooks()}
    for name, small in SMOKE.items():
        params = declared(by_name[name])
        assert {k for k in small if k in params}, f"{name}: none of {sorted(small)} is a parameter"


def test_setup_seeds_threads_and_describes(monkeypatch):
    monkeypatch.setattr(lesson, "IN_CI", True)  # no autoreload outside a kernel anyway
    info = setup(7)
    first = torch.rand(1)
    setup(7)
    assert torch.equal(first, torch.rand(1)) and info["torch"] == torch.__version__
    threads = torch.get_num_threads()
    try:
        for n in ("2", "1"):  # the set-up cell gives torch the threads OMP_NUM_THREADS names
            monkeypatch.setenv("OMP_NUM_THREADS", n)
            setup(7)
            assert torch.get_num_threads() == int(n)
    finally:
        torch.set_num_threads(threads)


def test_report_shows_a_table_and_prints_no_line(capsys, monkeypatch):
    shown = []

    class Shell:  # a kernel stand-in: report displays through IPython.display
        pass

    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    numbers = report(loss=0.123456, n=3, name="x", iou=float("nan"))
    assert {k: v for k, v in numbers.items() if k != "iou"} == {"loss": 0.1235, "n": 3, "name": "x"}
    assert capsys.readouterr().out == ""
    ((bundle, raw),) = shown
    assert raw and bundle[REPORT_MIME]["values"] == {"loss": 0.1235, "n": 3, "name": "x", "iou": None}  # NaN: null
    assert bundle[REPORT_MIME]["order"] == ["loss", "n", "name", "iou"]  # as reported, whatever sorts the keys
    assert "<table" in bundle["text/html"] and "<td>0.1235</td>" in bundle["text/html"]
    assert numbers._ipython_display_() is None  # a cell ending in report(...) adds no raw dict


def test_setup_picks_the_device_and_refuses_a_missing_one(monkeypatch):
    monkeypatch.setattr(lesson, "IN_CI", True)
    info = setup(0)  # one argument still works
    assert info["device"] == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert setup(0, device="cpu")["device"] == torch.device("cpu")
    assert "<table" in info._repr_html_() and "torch" in info._repr_html_()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            setup(0, device="cuda")
    with pytest.raises(ValueError, match="not a device"):
        setup(0, device="gpu please")


def test_setup_headless_draws_plotly_as_png_and_turns_bars_off(monkeypatch):
    import plotly.graph_objects as go
    import plotly.io as pio

    monkeypatch.setenv("R3LAB_HEADLESS", "1")
    monkeypatch.delenv("R3LAB_WIDGETS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    before = pio.renderers.default
    try:
        info = setup(0)
        assert pio.renderers.default == "r3lab" and "plotly r3lab: PNG by " in info["figures"]
        import os

        assert os.environ["TQDM_DISABLE"] == "1"
        fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]), layout=dict(width=300, height=200, title="t"))
        bundle = fig._repr_mimebundle_()
        assert "application/vnd.plotly.v1+json" in bundle and "text/html" not in bundle  # no inlined plotly.js
        import base64  # a PNG with or without a browser (kaleido's, else matplotlib's)

        assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
    finally:
        pio.renderers.default = before


def test_start_policy_and_benchmarks(tmp_path):
    policy, source = start_policy(smoke=True)
    assert source == "" and policy.patch_size == 7
    with pytest.raises(FileNotFoundError):
        start_policy(checkpoint=str(tmp_path / "missing"))
    assert load_benchmark("no-such-benchmark") is None


def test_a_missing_extra_is_one_line_naming_it_before_anything_runs(monkeypatch):
    monkeypatch.setitem(lesson.EXTRAS, "explain", ("r3lab_no_such_module", "gradient x input"))
    with pytest.raises(lesson.MissingExtra) as e:
        setup(0, "cpu", needs=["explain"])
    assert str(e.value) == (
        "this lesson needs r3lab_no_such_module (gradient x input), which is not installed: "
        "pip install 'r3lab[explain]' (or 'r3lab[course]' for every lesson)"
    )
    assert e.value._render_traceback_() == [f"MissingExtra: {e.value}"]  # a notebook shows this line alone
    assert isinstance(e.value, ImportError)
    with pytest.raises(ValueError, match="no extra 'typo'"):
        lesson.require("typo")
    lesson.require("trl")  # installed here: nothing happens
