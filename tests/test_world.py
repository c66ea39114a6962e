from collections import Counter

import numpy as np
import pytest
from PIL import Image

from r3lab.regions import Frame, ViewConfig, crop_and_zoom
from r3lab.world import (
    ALL_FAMILIES, COLOURS, FAMILIES, GLYPHS, Scene, TaskConfig, WorldConfig, coarse_detail_extent, coarse_residual, detail_mask,
    legibility, make_task, region_input_box, zoomed_detail_extent,
)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_same_seed_same_bytes_other_seed_other_image(family):
    a, b = make_task(family, 7, 3), make_task(family, 7, 3)
    assert a.question == b.question and a.answers == b.answers and a.regions == b.regions
    assert a.scene.render().tobytes() == b.scene.render().tobytes()
    c = make_task(family, 8, 3)
    assert c.scene.render().tobytes() != a.scene.render().tobytes()


def test_index_is_independent_of_other_indices():
    # task 5 is the same whether or not tasks 0-4 were generated first
    later = make_task("read_one", 1, 5)
    for i in range(5):
        make_task("read_one", 1, i)
    assert make_task("read_one", 1, 5).scene.to_dict() == later.scene.to_dict()


@pytest.mark.parametrize("family", ["read_one", "compare_two", "count", "glyph"])
def test_ground_truth_region_contains_its_detail_and_the_detail_is_drawn(family):
    for i in range(24):
        task = make_task(family, 0, i)
        im = np.asarray(task.scene.render())
        assert len(task.regions) == len(task.details) == len(task.targets) >= 1
        for region, detail, k in zip(task.regions, task.details, task.targets):
            assert region[0] <= detail[0] and region[1] <= detail[1] and region[2] >= detail[2] and region[3] >= detail[3]
            lm = task.scene.landmarks[k]
            box = lm.box
            assert box[0] <= detail[0] and box[1] <= detail[1] and box[2] >= detail[2] and box[3] >= detail[3]
            x1, y1, x2, y2 = (int(v) for v in detail)
            patch = im[y1:y2, x1:x2].reshape(-1, 3)
            assert (patch == COLOURS[lm.detail.colour]).all(axis=1).any(), "the detail colour is not in its box"
            # the detail sits on the landmark: the landmark colour surrounds it
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            ring = im[max(0, cy - 6):cy + 7, max(0, cx - 6):cx + 7].reshape(-1, 3)
            assert (ring == COLOURS[lm.colour]).all(axis=1).any()


def test_the_crop_of_a_region_shows_the_detail_large():
    view = ViewConfig()
    task = make_task("read_one", 2, 0)
    lm = task.scene.landmarks[0]
    frame = Frame.of(task.scene.size, view)
    crop = crop_and_zoom(task.scene.render(), region_input_box(task.regions[0], frame), view)
    arr = np.asarray(crop.image)
    hits = (np.abs(arr.astype(int) - COLOURS[lm.detail.colour]).sum(axis=2) < 30)
    ys, xs = np.nonzero(hits)
    assert xs.max() - xs.min() + 1 >= 8  # ~5 px detail -> about 9-11 px after crop-and-zoom


def test_detail_is_illegible_at_the_coarse_view_and_legible_after_zoom():
    world, view = WorldConfig(), ViewConfig()
    assert coarse_detail_extent(world, view) < 1.0  # less than one model-input pixel
    assert coarse_detail_extent(world, view, "mark") == pytest.approx(5 / 6)
    assert zoomed_detail_extent(world, view, "mark") >= 9.0
    assert zoomed_detail_extent(world, view, "dots") >= 5.0
    leg = legibility(world, view)
    assert leg["mark"]["zoomed_px"] / leg["mark"]["coarse_px"] > 10
    # the helper is not vacuous: a large detail on a small canvas is legible at the coarse view
    assert coarse_detail_extent(WorldConfig(canvas_sizes=((336, 336),), mark_size=5), view) > 1.0
    # the zoomed size follows the detail size
    small = WorldConfig(mark_size=4)
    assert zoomed_detail_extent(small, view, "mark") == pytest.approx(zoomed_detail_extent(world, view, "mark") * 4 / 5)


def test_details_barely_change_the_coarse_view_but_dominate_the_zoomed_crop():
    for i in range(6):
        r = coarse_residual(make_task("read_one", 0, i).scene)
        assert r["zoomed_max"] > 2 * r["coarse_max"]
        assert r["zoomed_max"] > 150


@pytest.mark.parametrize("family,k", [("read_one", 10), ("compare_two", 2), ("count", 4), ("glyph", 10)])
def test_answers_are_balanced(family, k):
    counts = Counter(make_task(family, 4, i).answers[0] for i in range(5 * k))
    assert len(counts) == k and set(counts.values()) == {5}


def test_answers_carry_alternatives():
    answers = {make_task("count", 0, i).answers[0]: make_task("count", 0, i).answers for i in range(4)}
    assert answers["3"] == ["3", "three"]
    world = WorldConfig(mark_colours=("grey", "white", "black"))
    tasks = TaskConfig(read_kinds=("colour",))
    greys = [make_task("read_one", 0, i, world, tasks).answers for i in range(6)]
    assert ["grey", "gray"] in greys


def test_control_names_a_unique_large_object():
    world = WorldConfig()
    for i in range(20):
        t = make_task("control", 0, i)
        lms = t.scene.landmarks
        assert t.targets == [] and t.regions == []
        assert lms[0].box[2] - lms[0].box[0] >= world.control_min
        if t.kind == "colour":
            assert sum(lm.shape == lms[0].shape for lm in lms) == 1 and lms[0].shape in t.question
        else:
            assert lms[0].colour in t.question
        assert len({lm.colour for lm in lms}) == len(lms)


def test_landmark_colours_are_distinct_and_contrast_with_their_details():
    world = WorldConfig()
    for fam in ("read_one", "compare_two"):
        for i in range(20):
            lms = make_task(fam, 1, i).scene.landmarks
            assert len({lm.colour for lm in lms}) == len(lms)
            for lm in lms:
                d = np.linalg.norm(np.subtract(COLOURS[lm.colour], COLOURS[lm.detail.colour]))
                assert d >= world.min_contrast


def test_scene_json_round_trip_renders_the_same_bytes():
    scene = make_task("count", 3, 1).scene
    again = Scene.from_dict(scene.to_dict())
    assert again.render().tobytes() == scene.render().tobytes()
    assert isinstance(scene(), Image.Image)


def test_non_square_canvases_keep_scale():
    view = ViewConfig()
    for size in WorldConfig().canvas_sizes:
        f = Frame.of(size, view)
        assert f.input_w / f.orig_w == pytest.approx(1 / 6) and f.input_h / f.orig_h == pytest.approx(1 / 6)


def test_region_input_box_covers_the_region_after_the_round_trip():
    view = ViewConfig()
    for i in range(30):
        t = make_task("compare_two", 5, i)
        frame = Frame.of(t.scene.size, view)
        for r in t.regions:
            b = region_input_box(r, frame)
            assert all(float(v).is_integer() for v in b)
            x1, y1, x2, y2 = frame.to_orig(b)
            assert x1 <= r[0] and y1 <= r[1] and x2 + 1 >= r[2] and y2 + 1 >= r[3]


def test_detail_masks_are_distinct():
    masks = {s: detail_mask(s, 5).tobytes() for s in ("square", "cross", "ring", "triangle")}
    assert len(set(masks.values())) == 4
    with pytest.raises(ValueError, match="unknown detail shape"):
        detail_mask("hexagon", 5)


def test_bad_configs_give_clear_errors():
    with pytest.raises(ValueError, match="unknown task family"):
        make_task("glyphs", 0, 0)
    with pytest.raises(ValueError, match="unknown colour"):
        WorldConfig(mark_colours=("teal",))
    with pytest.raises(ValueError, match="could not place|does not fit"):
        make_task("read_one", 0, 0, WorldConfig(canvas_sizes=((120, 120),), n_objects_min=4))
    with pytest.raises(ValueError, match="does not fit"):
        make_task("count", 0, 0, WorldConfig(object_min=12, object_max=12, dot_size=4), TaskConfig(count_max=4))


def test_world_config_accepts_json_lists():
    w = WorldConfig(canvas_sizes=[[448, 448]], mark_colours=["red", "blue"])
    assert w.canvas_sizes == ((448, 448),) and hash(w)
    assert make_task("read_one", 0, 0, w).scene.size == (448, 448)


def test_glyph_family_draws_the_asked_digit():
    assert "glyph" not in FAMILIES  # opt-in: the hard family
    for i in range(10):
        t = make_task("glyph", 0, i)
        lm = t.scene.landmarks[0]
        x1, y1, x2, y2 = (int(v) for v in lm.detail.box)
        assert (x2 - x1, y2 - y1) == (3, 5) and t.answers[0] == lm.detail.shape
        patch = np.asarray(t.scene.render())[y1:y2, x1:x2]
        lit = (patch == COLOURS[lm.detail.colour]).all(axis=2)
        assert "".join("1" if v else "0" for v in lit.reshape(-1)) == GLYPHS[t.answers[0]]
    assert legibility()["glyph"]["coarse_px"] < 1.0
