"""A recipe setting by its path: one module reads, sets and lists them, and names the flag of each."""

from dataclasses import asdict

import pytest

from r3lab.recipe.paths import by_path, flag_of, get_setting, set_setting
from r3lab.recipe.recipe_config import RecipeConfig


def test_a_path_reaches_a_field_a_stage_and_any_phase_setting_and_names_what_exists_where_it_does_not():
    values = asdict(RecipeConfig())
    for path, value in (
        ("n_train", 12),
        ("base.batch", 8),
        ("rgrpo.steps", 3),
        ("read.steps", 9),
        ("compare.check.bar", 90.0),
        ("sft.mix.weights", {"read_one": 2}),
        ("sft.steps", 7),
    ):
        set_setting(values, path, value)
        assert get_setting(values, path) == value
    assert values["sft"]["batch"] == 32 and values["sft"]["phases"][0]["steps"] == 7  # sft.steps: the phase's
    with pytest.raises(ValueError, match=r"'look\.steps' names no phase's setting: the phases are \['ground'"):
        set_setting(values, "look.steps", 1)
    with pytest.raises(ValueError, match=r"read\.mix has no setting 'closeup'; known: .*'closeups'"):
        set_setting(values, "read.mix.closeup", 1.0)
    with pytest.raises(ValueError, match=r"phase 'pairs' has no check: give it whole"):
        set_setting(values, "pairs.check.bar", 1.0)
    with pytest.raises(ValueError, match=r"rgrpo has no setting 'step'"):
        set_setting(values, "rgrpo.step", 1)
    flat = by_path(values)
    assert flat["compare.check.bar"] == 90.0 and flat["base.phases"][0] == "ground" and "read.why" not in flat


def test_each_path_names_the_flag_that_sets_it():
    assert [
        flag_of(p)
        for p in (
            "read.check.bar",
            "read.check.n",
            "compare.check.ground_bar",
            "sft_read.steps",
            "base.batch",
            "rgrpo.group_size",
            "n_train",
            "read.mix.closeups",
            "read.why",
        )
    ] == [
        "--read-bar",
        "--read-check",
        "--compare-ground-bar",
        "--sft-read-steps",
        "--base-batch",
        "--rgrpo-group-size",
        "--n-train",
        "--read-mix '{\"closeups\": ...}'",
        "--set read.why=...",
    ]
