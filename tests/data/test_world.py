"""Scenes: landmarks carry their details, colours contrast, JSON round trip, config errors."""

import numpy as np
import pytest
from PIL import Image

from r3lab.core.regions import Frame, ViewConfig
from r3lab.data.details import detail_mask
from r3lab.data.tasks import TaskConfig, make_task
from r3lab.data.world import COLOURS, Scene, WorldConfig, region_input_box


@pytest.mark.parametrize("family", ["read_one", "compare_two", "count", "glyph"])
def test_ground_truth_region_contains_its_detail_and_the_detail_is_drawn(family):
    for i in range(24):
        task = make_task(family, 0, i)
        im = np.asarray(task.scene.render())
        assert len(task.regions) == len(task.details) == len(task.targets) >= 1
        for region, detail, k in zip(task.regions, task.details, task.targets):
            assert (
                region[0] <= detail[0] and region[1] <= detail[1] and region[2] >= detail[2] and region[3] >= detail[3]
            )
            lm = task.scene.landmarks[k]
            box = lm.box
            assert box[0] <= detail[0] and box[1] <= detail[1] and box[2] >= detail[2] and box[3] >= detail[3]
            x1, y1, x2, y2 = (int(v) for v in detail)
            patch = im[y1:y2, x1:x2].reshape(-1, 3)
            if lm.detail.kind == "pattern":  # a grey tile whose grating spans dark to light
                grey = patch[:, 0].astype(int)
                assert (patch[:, 0] == patch[:, 1]).all() and grey.max() - grey.min() > 120
            else:
                assert (patch == COLOURS[lm.detail.colour]).all(axis=1).any(), "the detail colour is not in its box"
            # the detail sits on the landmark: the landmark colour surrounds it
            cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
            r = max(x2 - x1, y2 - y1) // 2 + 4
            ring = im[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].reshape(-1, 3)
            assert (ring == COLOURS[lm.colour]).all(axis=1).any()


def test_landmark_colours_are_distinct_and_contrast_with_their_details():
    world, colour = WorldConfig(), TaskConfig(read_kinds=("colour",), compare_kind="colour")
    for fam in ("read_one", "compare_two"):
        for i in range(20):
            landmarks = make_task(fam, 1, i).scene.landmarks
            assert len({lm.colour for lm in landmarks}) == len(landmarks)
            lms = make_task(fam, 1, i, tasks=colour).scene.landmarks
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
    with pytest.raises(ValueError, match="unknown colour"):
        WorldConfig(mark_colours=("teal",))
    with pytest.raises(ValueError, match="could not place|does not fit"):
        make_task("read_one", 0, 0, WorldConfig(canvas_sizes=((120, 120),), n_objects_min=4, n_objects_max=4))
    with pytest.raises(ValueError, match="n_objects_min=4 exceeds n_objects_max=3; raise n_objects_max"):
        WorldConfig(n_objects_min=4)
    with pytest.raises(ValueError, match="does not fit"):
        make_task("count", 0, 0, WorldConfig(object_min=12, object_max=12, dot_size=4), TaskConfig(count_max=4))


def test_world_config_accepts_json_lists():
    w = WorldConfig(canvas_sizes=[[448, 448]], mark_colours=["red", "blue"])
    assert w.canvas_sizes == ((448, 448),) and hash(w)
    assert make_task("read_one", 0, 0, w).scene.size == (448, 448)


def test_describe_states_the_worlds_sizes_in_a_line():
    default = WorldConfig().describe()
    assert "\n" not in default and len(default) < 250
    assert default.startswith("672×672 canvas; 2–3 landmarks of 100–130 px")
    assert "a detail tile of 18 px" in default and "period 4 px" in default
    changed = WorldConfig(pattern_period=12, object_min=80, canvas_sizes=((448, 448), (672, 672))).describe()
    assert changed.startswith("448×448, 672×672 canvas; 2–3 landmarks of 80–130 px") and "period 12 px" in changed
