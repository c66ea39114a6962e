"""The plotly view: image, one hoverable trace per crop, arrows, a heatmap toggle."""

import plotly.graph_objects as go
import pytest

from r3lab.explain.capture import attention_maps
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz.plotly_view import figure_trajectory


def test_figure_traces_hover_and_toggle():
    p = tiny_policy()
    t = toy_trajectory(p)
    fig = figure_trajectory(t, maps=attention_maps(p, t, layers="all"))
    assert isinstance(fig, go.Figure)
    kinds = [d.type for d in fig.data]
    assert kinds == ["image", "scatter", "heatmap"]
    box = fig.data[1]
    x1, y1, x2, y2 = t.crops[0].info.box_orig
    assert min(box.x) == x1 and max(box.x) == x2 + 1 and min(box.y) == y1
    assert "bbox_2d" in box.text and "crop 1" in box.text  # hover text is the step's text
    assert fig.data[2].visible is False
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == ["image", "attention"]
    assert fig.layout.updatemenus[0].buttons[1].args[0]["visible"] == [True, True, True]
    assert fig.layout.yaxis.range == (t.main.image.height, 0)


def test_figure_without_attention_and_escaping():
    p = tiny_policy()
    t = toy_trajectory(p)
    t.question = "<b>bold?</b>"
    fig = figure_trajectory(t)
    assert [d.type for d in fig.data] == ["image", "scatter"] and not fig.layout.updatemenus
    assert "&lt;b&gt;" in fig.layout.title.text
    t.main.image = None
    with pytest.raises(ValueError, match="no pixels"):
        figure_trajectory(t)
