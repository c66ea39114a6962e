"""Plotly figures drawn by matplotlib (no browser): every trace type r3lab's figures use, on any subplot grid."""

import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image
from plotly.subplots import make_subplots

from r3lab.viz.mpl_fit import text_problems
from r3lab.viz.plotly_mpl import plotly_to_mpl, plotly_to_png
from r3lab.viz.plotly_traces import colour


def _grid():
    fig = make_subplots(rows=2, cols=2, subplot_titles=["image", "bars", "curve", "lens"])
    fig.add_trace(go.Image(z=np.full((20, 30, 3), 200, dtype=np.uint8)), row=1, col=1)
    fig.add_trace(
        go.Contour(
            z=np.random.default_rng(0).random((5, 6)),
            x=np.linspace(0, 29, 6),
            y=np.linspace(0, 19, 5),
            contours=dict(coloring="lines", start=0.25, end=1, size=0.25),
            line=dict(color="#ff0000"),
            showscale=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=["a", "b"], y=[1, 2], name="one", marker=dict(color=["red", "rgb(0,0,255)"]), text=["1", "2"]),
        row=1,
        col=2,
    )
    fig.add_trace(go.Bar(x=["a", "b"], y=[2, 1], name="two"), row=1, col=2)
    fig.add_trace(
        go.Scatter(x=[0, 1, 2], y=[1, 0, 1], mode="lines+markers", name="curve", line=dict(dash="dash")), row=2, col=1
    )
    fig.add_trace(
        go.Heatmap(
            z=[[0, 1], [2, 3]], x=["0", "1"], y=["a", "b"], colorscale="Greys", reversescale=True, showscale=False
        ),
        row=2,
        col=2,
    )
    fig.add_shape(type="rect", x0=2, y0=2, x1=10, y1=10, xref="x", yref="y", line=dict(color="cyan", dash="dash"))
    fig.add_annotation(x=5, y=5, text="<b>1</b>", showarrow=False, xref="x", yref="y")
    fig.update_yaxes(range=[20, 0], scaleanchor="x", row=1, col=1)
    fig.update_layout(width=640, height=480, title="a <b>grid</b>", barmode="group")
    return fig


def test_every_trace_of_a_subplot_grid_is_drawn_on_its_own_axes():
    fig = plotly_to_mpl(_grid().to_dict())
    axes = fig.axes
    assert len(axes) == 4  # one matplotlib axes per plotly subplot with traces
    image, bars, curve, lens = axes
    assert image.images and image.get_ylim()[0] > image.get_ylim()[1]  # reversed y, as the layout asks
    assert image.get_aspect() == 1.0 and any(p.get_width() == 8 for p in image.patches)  # equal aspect; the shape
    assert len(bars.patches) == 4 and bars.patches[0].get_facecolor()[:3] == (1.0, 0.0, 0.0)  # grouped, own colours
    assert [t.get_text() for t in bars.get_xticklabels()] == ["a", "b"]
    assert curve.lines and curve.lines[0].get_linestyle() == "--"
    assert [t.get_text() for t in lens.get_yticklabels()] == ["a", "b"] and lens.images
    texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in axes for t in ax.texts]
    assert "a grid" in texts and {"image", "bars", "curve", "lens"} <= set(texts) and "1" in texts  # markup dropped
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == ["one", "two", "curve"]


def test_the_png_has_the_figures_pixel_size_and_what_its_texts_need():
    w, h = Image.open(io.BytesIO(plotly_to_png(_grid().to_dict()))).size
    assert 640 <= w <= 700 and h == 480  # its legend reaches a few pixels past the right margin: the canvas grows
    assert not text_problems(plotly_to_mpl(_grid().to_dict()))
    assert Image.open(io.BytesIO(plotly_to_png(go.Figure().to_dict(), 300, 200))).size == (300, 200)


def test_a_trace_it_cannot_draw_is_named_not_dropped():
    fig = plotly_to_mpl(go.Figure([go.Pie(values=[1, 2]), go.Scatter(y=[1, 2])]).to_dict())
    assert any("not drawn: pie" in t.get_text() for t in fig.texts)


def test_typed_arrays_and_colours_are_read():
    from r3lab.viz.plotly_traces import _array

    a = np.arange(6, dtype="u1").reshape(2, 3)
    import base64

    packed = {"dtype": "u1", "bdata": base64.b64encode(a.tobytes()).decode(), "shape": "2, 3"}
    assert (_array(packed) == a).all() and _array(None) is None
    assert colour("rgba(255,0,0,0.5)") == (1.0, 0.0, 0.0, 0.5) and colour("#123456") == "#123456"
    assert colour(None, "k") == "k"


@pytest.mark.parametrize("name", ["record", "faithfulness", "trajectory", "dashboard"])
def test_r3labs_own_plotly_figures_draw_without_a_browser(name, tmp_path):
    from r3lab.explain.record import WhyConfig
    from r3lab.explain.runs import explain_trajectories
    from r3lab.testing import tiny_policy, toy_trajectory, write_agent_loop
    from r3lab.viz.dashboard import crop_dashboard
    from r3lab.viz.explain import plot_faithfulness, plot_record
    from r3lab.viz.plotly_view import figure_trajectory

    policy = tiny_policy()
    trajs = [toy_trajectory(policy), toy_trajectory(policy, crop="square")]
    if name == "trajectory":
        fig = figure_trajectory(trajs[1])
    elif name == "dashboard":
        fig = crop_dashboard(write_agent_loop(tmp_path / "verl", policy, 4, 4, True), tokenizer=policy)
    else:
        run = explain_trajectories(policy, trajs, WhyConfig(steps=2, curve_steps=2, targets=("box",)), progress=False)
        fig = plot_record(run.records[0], trajs[0].main.image) if name == "record" else plot_faithfulness(run.summary)
    drawn = plotly_to_mpl(fig.to_dict())
    artists = sum(len(ax.lines) + len(ax.images) + len(ax.patches) + len(ax.collections) for ax in drawn.axes)
    assert artists >= len([t for t in fig.data if t.visible is not False])  # every visible trace left a mark
    assert not any(t.get_text().startswith("not drawn") for t in drawn.texts)
    assert not text_problems(drawn)  # no text cut at the canvas' edge, no two texts on top of each other


def test_text_past_the_edge_grows_the_canvas_and_overlaps_are_named():
    from matplotlib.figure import Figure

    from r3lab.viz.mpl_fit import fit_canvas, wrap_label

    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.9))  # no room for tick labels, an axis title or a legend
    ax.plot([0, 1], [0, 1000], label="a long legend entry that runs past the edge")
    ax.plot([0, 1], [1, 2], label="b")
    ax.set_ylabel("log-prob drop")
    fig.legend(loc="upper left", bbox_to_anchor=(0.8, 0.9))
    fig.text(0.5, 0.97, "title", ha="center")
    problems = text_problems(fig)
    assert any("outside" in p and "long legend" in p for p in problems) and any("drop" in p for p in problems)
    fit_canvas(fig)
    assert not text_problems(fig) and fig.get_figwidth() > 4 and fig.get_figheight() > 3
    fig.text(*fig.texts[0].get_position(), "title again", ha="center")  # where the first one went
    assert text_problems(fig) == ["overlapping: 'title' and 'title again'"]
    assert wrap_label("integrated_gradients and more", 12) == "integrated_\ngradients and\nmore"


def test_subplot_titles_wider_than_their_columns_shrink_apart():
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=["crop IoU with the ground truth", "accuracy: all / with a crop / without", "reward"],
    )
    for c in (1, 2, 3):
        fig.add_trace(go.Scatter(y=[0, 1]), row=1, col=c)
    fig.update_layout(width=700, height=300)
    drawn = plotly_to_mpl(fig.to_dict())
    assert not text_problems(drawn), text_problems(drawn)
    assert min(t.get_fontsize() for t in drawn.texts if t.get_text()) >= 6
