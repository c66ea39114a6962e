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


def test_without_kaleido_the_output_says_why_and_keeps_the_json(monkeypatch):
    def broken(fig):
        raise RuntimeError("Chrome not found")

    monkeypatch.setattr(static, "figure_png", broken)
    b = static.static_bundle(go.Figure().to_dict())
    assert "image/png" not in b and "Chrome not found" in b["text/plain"] and "pip install kaleido" in b["text/plain"]
    assert "application/vnd.plotly.v1+json" in b


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
    e = SimpleNamespace(event=0, gt_iou=0.9, mass_in_box=0.4, concentration=2.0, top_in_gt=True, needed=True,
                        importance={"blank": 0.3, "coarse": None, "wrong": 0.1})
    t = explanations_table({"s1": [e, e]})
    assert isinstance(t, Table) and len(t) == 2 and t.rows[0]["importance (blank)"] == 0.3
    assert t.columns[:3] == ["sample", "crop", "IoU"] and "<td>–</td>" in t._repr_html_()
