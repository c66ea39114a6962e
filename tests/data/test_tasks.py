"""Task families: deterministic per (seed, family, index), balanced answers with alternatives, control and glyph."""

from collections import Counter

import numpy as np
import pytest

from r3lab.data.details import GLYPHS
from r3lab.data.tasks import ALL_FAMILIES, FAMILIES, TaskConfig, make_task
from r3lab.data.world import COLOURS, WorldConfig


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


@pytest.mark.parametrize("family,k", [("read_one", 5), ("compare_two", 2), ("count", 4), ("glyph", 10), ("control", 4)])
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


def test_unknown_family_gives_a_clear_error():
    with pytest.raises(ValueError, match="unknown task family"):
        make_task("glyphs", 0, 0)
