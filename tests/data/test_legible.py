"""Details are illegible at the coarse view and legible after crop-and-zoom: computed and measured."""

import numpy as np
import pytest

from r3lab.core.regions import Frame, ViewConfig, crop_and_zoom
from r3lab.data.details import PATTERNS, pattern_tile
from r3lab.data.legible import (
    class_separability,
    coarse_detail_extent,
    coarse_residual,
    legibility,
    zoomed_detail_extent,
)
from r3lab.data.tasks import TaskConfig, make_task
from r3lab.data.world import COLOURS, WorldConfig, region_input_box

COLOUR = TaskConfig(read_kinds=("colour",), compare_kind="colour")  # the opt-in colour marks


def test_pattern_classes_are_the_same_grey_dot_at_the_coarse_view_and_apart_in_the_zoom():
    """The world's premise for the default detail: the coarse view cannot tell the answer classes apart
    (differences within the world's noise, a probe at chance), the zoomed crop can (a probe far above it)."""
    r = class_separability(n=60, seed=3)
    assert r["classes"] == list(PATTERNS) and r["chance"] == pytest.approx(0.2)
    assert r["class_max"] <= r["noise_max"]  # grey levels of the model's coarse input
    assert r["coarse_probe"] < r["chance"] + 0.15
    assert r["zoom_probe"] > 0.8


def test_a_fixed_phase_leaks_through_the_coarse_view():
    """The probe can see what leaks: centred gratings leave systematic grey levels a linear probe reads."""
    r = class_separability(WorldConfig(pattern_phase="fixed"), n=60, seed=3)
    assert r["coarse_probe"] > 3 * r["chance"]
    with pytest.raises(ValueError, match="pattern_phase"):
        WorldConfig(pattern_phase="centred")


def test_colour_marks_fail_the_same_measurement():
    """The measurement can fail: a colour mark survives downsampling as a tint (the crop is only a pointer)."""
    r = class_separability(n=30, seed=3, tasks=COLOUR)
    assert r["class_max"] > 10 * r["noise_max"] and r["coarse_probe"] > 3 * r["chance"]


def test_pattern_tiles_share_their_mean_and_show_their_orientation():
    tiles = {p: pattern_tile(p, 20, 4, 10, 110, (0.3, 0.7)).astype(float) for p in PATTERNS}
    assert all(abs(t.mean() - 128) < 1.5 for t in tiles.values())
    h, v = tiles["horizontal"], tiles["vertical"]
    assert np.abs(np.diff(h, axis=0)).mean() > 5 * np.abs(np.diff(h, axis=1)).mean()  # varies down, not across
    assert np.abs(np.diff(v, axis=1)).mean() > 5 * np.abs(np.diff(v, axis=0)).mean()
    assert not np.array_equal(
        pattern_tile("rising", 20, 4, 10, 110, (0.0, 0.0)), pattern_tile("rising", 20, 4, 10, 110, (0.5, 0.0))
    )
    with pytest.raises(ValueError, match="unknown pattern"):
        pattern_tile("spiral", 20, 4, 10, 110)
    with pytest.raises(ValueError, match="pattern_period"):
        WorldConfig(pattern_period=1)


def test_the_crop_of_a_region_shows_the_detail_large():
    view = ViewConfig()
    task = make_task("read_one", 2, 0, tasks=COLOUR)
    lm = task.scene.landmarks[0]
    frame = Frame.of(task.scene.size, view)
    crop = crop_and_zoom(task.scene.render(), region_input_box(task.regions[0], frame), view)
    arr = np.asarray(crop.image)
    hits = np.abs(arr.astype(int) - COLOURS[lm.detail.colour]).sum(axis=2) < 30
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
    assert zoomed_detail_extent(small, view, "mark") == pytest.approx(
        zoomed_detail_extent(world, view, "mark") * 4 / 11
    )


def test_details_barely_change_the_coarse_view_but_dominate_the_zoomed_crop():
    for i in range(6):
        scene = make_task("read_one", 0, i, tasks=COLOUR).scene
        r = coarse_residual(scene)
        assert r["zoomed_max"] > 200 and r["zoomed_pixels"] > 100  # the crop shows the mark over ~150 pixels
        # ... while each mark tints a few pixels of the coarse view (all marks together here)
        assert r["coarse_pixels"] <= 6 * len(scene.landmarks)
        assert r["zoomed_pixels"] > 20 * r["coarse_pixels"] / len(scene.landmarks)
    old = coarse_residual(make_task("read_one", 0, 0, WorldConfig(mark_size=5), COLOUR).scene)
    assert old["coarse_max"] < 0.6 * old["zoomed_max"]  # 5-px marks: under one coarse pixel


def test_glyphs_are_illegible_at_the_coarse_view():
    assert legibility()["glyph"]["coarse_px"] < 1.0
