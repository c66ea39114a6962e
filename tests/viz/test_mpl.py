"""Matplotlib views return Figures with the expected artists."""

import matplotlib
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from r3lab.explain.capture import attention_maps
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz.mpl import plot_attention, plot_step, plot_trajectory
from r3lab.viz.steps import crop_boxes, trajectory_steps

matplotlib.use("agg")


@pytest.fixture(scope="module")
def setup():
    p = tiny_policy()
    t = toy_trajectory(p)
    return p, t, attention_maps(p, t, layers="all", queries="model")


def _by_gid(fig, gid):
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def test_steps_and_boxes_come_from_the_trajectory(setup):
    _, t, _ = setup
    steps = trajectory_steps(t)
    assert [s.kind for s in steps] == ["env_text", "model_text", "image", "model_text"]
    assert steps[0].text == t.question and steps[1].crop == steps[2].crop == 1
    (c,) = crop_boxes(t)
    x1, y1, x2, y2 = t.crops[0].info.box_orig
    assert c["box"] == (x1, y1, x2 + 1, y2 + 1) and c["ok"]


def test_plot_trajectory_artists(setup):
    _, t, maps = setup
    fig = plot_trajectory(t, maps=maps)
    assert isinstance(fig, Figure)
    main = fig.axes[0]
    rects = [p for p in main.patches if isinstance(p, Rectangle) and (p.get_gid() or "").startswith("crop-")]
    assert len(rects) == 1 and rects[0].get_gid() == "crop-1"
    assert rects[0].get_width() == pytest.approx(crop_boxes(t)[0]["box"][2] - crop_boxes(t)[0]["box"][0])
    assert "1" in [txt.get_text() for txt in main.texts]
    assert len(main.images) == 2 and _by_gid(fig, "attention")  # the image and the heatmap
    (text,) = _by_gid(fig, "step-text")
    assert "bbox_2d" in text.get_text() and "crop 1" in text.get_text()
    assert any(a.get_title() == "crop 1" for a in fig.axes[1:])


def test_plot_trajectory_into_given_ax_and_fig(setup):
    _, t, _ = setup
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_trajectory(t, ax=ax) is fig and len(fig.axes) == 1 and len(ax.patches) == 1
    fig2 = Figure()
    assert plot_trajectory(t, fig=fig2, text=False) is fig2 and len(fig2.axes) >= 2


def test_arrows_follow_call_order():
    from r3lab.core.crop_calls import find_crop_calls, format_crop_call
    from r3lab.core.trajectory import MODEL, CropEvent, Piece

    p = tiny_policy()
    t = toy_trajectory(p)
    text = " And the square too. " + format_crop_call((60, 45, 100, 80))
    t.pieces.insert(5, Piece(MODEL, text, tag="reasoning"))
    call = find_crop_calls(text, t.frame)[-1]
    t.add_crop(call.box, p.view)
    t.pieces.insert(6, t.pieces.pop())
    t.events.append(CropEvent(call, 5, 6))
    fig = plot_trajectory(t.tokenize(p), text=False)
    ann = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(ann) == 1
    (b1, b2) = [c["box"] for c in crop_boxes(t)]
    assert ann[0].xy == pytest.approx(((b2[0] + b2[2]) / 2, (b2[1] + b2[3]) / 2))
    assert len([s for s in trajectory_steps(t) if s.kind == "image"]) == 2


def test_plot_step_and_attention(setup):
    _, t, maps = setup
    fig = plot_step(t, 1, maps=maps)
    assert isinstance(fig, Figure) and _by_gid(fig, "attention")
    assert "no crop yet" in [x.get_text() for ax in fig.axes for x in ax.texts]
    fig = plot_step(t, 2)
    assert any(ax.get_title() == "zoomed crop 1" for ax in fig.axes)
    with pytest.raises(ValueError, match="out of range"):
        plot_step(t, 9)
    fig = plot_attention(maps, 1)
    assert isinstance(fig, Figure) and len(fig.axes[0].images) == 2
    fig = plot_attention(maps, 0, frame="orig", layers=[1])
    assert fig.axes[0].images[-1].get_array().shape == (t.main.image.height, t.main.image.width)


def test_untokenized_reference_gets_a_clear_error():
    from r3lab.data.vlir import build_samples
    from r3lab.testing import tiny_policy

    p = tiny_policy()
    s = next(x for x in build_samples(4, seed=0, progress=False) if x.regions)
    with pytest.raises(ValueError, match="tokenize"):
        plot_trajectory(s.reference(p.view))
    traj = s.reference(p.view).tokenize(p)
    crops = [q for q in plot_trajectory(traj).axes[0].patches if (q.get_gid() or "").startswith("crop-")]
    assert len(crops) == len(traj.crops) >= 1  # every crop of the tokenized reference drawn on the main image
