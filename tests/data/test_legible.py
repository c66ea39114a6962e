"""Details are illegible at the coarse view and legible after crop-and-zoom: computed and measured."""
import numpy as np
import pytest

from r3lab.core.regions import Frame, ViewConfig, crop_and_zoom
from r3lab.data.legible import coarse_detail_extent, coarse_residual, legibility, zoomed_detail_extent
from r3lab.data.tasks import make_task
from r3lab.data.world import COLOURS, WorldConfig, region_input_box


def test_the_crop_of_a_region_shows_the_detail_large():
    view = ViewConfig()
    task = make_task("read_one", 2, 0)
    lm = task.scene.landmarks[0]
    frame = Frame.of(task.scene.size, view)
    crop = crop_and_zoom(task.scene.render(), region_input_box(task.regions[0], frame), view)
    arr = np.asarray(crop.image)
    hits = (np.abs(arr.astype(int) - COLOURS[lm.detail.colour]).sum(axis=2) < 30)
    ys, xs = np.nonzero(hits)
    assert xs.max() - xs.min() + 1 >= 9  # 11 px mark: 1.8 px at the coarse view, ~11 px in the 140x140 crop


def test_detail_is_illegible_at_the_coarse_view_and_legible_after_zoom():
    world, view = WorldConfig(), ViewConfig()
    assert coarse_detail_extent(world, view) < 2.0  # a quarter of a 7-px patch's side at most
    assert coarse_detail_extent(world, view, "mark") == pytest.approx(11 / 6)
    assert coarse_detail_extent(world, view, "shape") < 1.0  # the opt-in details stay under one pixel
    # a 100-130 px landmark's region fills the 140x140 crop at about 1:1, so the zoom is ~6x the coarse view
    assert zoomed_detail_extent(world, view, "mark") >= 10.5  # one and a half 7-px patches
    assert zoomed_detail_extent(world, view, "dots") >= 2.5
    leg = legibility(world, view)
    assert leg["mark"]["zoomed_px"] / leg["mark"]["coarse_px"] > 5
    # the helper is not vacuous: a large detail on a small canvas is legible at the coarse view
    assert coarse_detail_extent(WorldConfig(canvas_sizes=((336, 336),), mark_size=5), view) > 1.0
    # the zoomed size follows the detail size
    small = WorldConfig(mark_size=4)
    assert zoomed_detail_extent(small, view, "mark") == pytest.approx(zoomed_detail_extent(world, view, "mark") * 4 / 11)


def test_details_barely_change_the_coarse_view_but_dominate_the_zoomed_crop():
    for i in range(6):
        scene = make_task("read_one", 0, i).scene
        r = coarse_residual(scene)
        assert r["zoomed_max"] > 200 and r["zoomed_pixels"] > 100  # the crop shows the mark over ~150 pixels
        # ... while each mark tints a few pixels of the coarse view (all marks together here)
        assert r["coarse_pixels"] <= 6 * len(scene.landmarks) and r["zoomed_pixels"] > 20 * r["coarse_pixels"] / len(scene.landmarks)
    old = coarse_residual(make_task("read_one", 0, 0, WorldConfig(mark_size=5)).scene)
    assert old["coarse_max"] < 0.6 * old["zoomed_max"]  # 5-px marks: under one coarse pixel


def test_glyphs_are_illegible_at_the_coarse_view():
    assert legibility()["glyph"]["coarse_px"] < 1.0
