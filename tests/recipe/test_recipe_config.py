"""RecipeConfig is a plain dataclass; flat names, paths and format 1 come in through one door, `from_settings`."""

import dataclasses
import inspect
import json
import warnings

import pytest

from r3lab.recipe.recipe_config import RecipeConfig, saved_recipe
from r3lab.recipe.recipe_folder import read_recipe


def test_the_config_shows_its_fields_and_takes_nothing_else():
    params = inspect.signature(RecipeConfig).parameters
    assert list(params) == [f.name for f in dataclasses.fields(RecipeConfig)] and "base" in params
    assert "**" not in str(inspect.signature(RecipeConfig))
    with pytest.raises(TypeError):
        RecipeConfig(**{"read.steps": 3})
    cfg = RecipeConfig(n_train=100, base={"batch": 8})  # a stage as a dict: read over the default
    assert cfg.base.batch == 8 and cfg.base.phases == RecipeConfig().base.phases


def test_one_door_takes_fields_paths_and_format_1_names_and_warns_for_format_1(recwarn):
    cfg = RecipeConfig.from_settings(n_train=120, **{"read.steps": 3, "compare.check.bar": 90.0})
    assert (cfg.n_train, cfg.phase("read").steps, cfg.phase("compare").check.bar) == (120, 3, 90.0)
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    with pytest.warns(FutureWarning, match=r"r3lab 0\.3.*read_min \(--read-min\) -> read\.check\.bar \(--read-bar\)"):
        old = RecipeConfig.from_settings(read_min=50.0, base_lr=5e-4)
    assert old.phase("read").check.bar == 50.0 and old.phase("compare").lr == 5e-4
    with pytest.raises(ValueError, match=r"read_min and read\.check\.bar \(--read-bar\); give today's only"):
        RecipeConfig.from_settings(read_min=50.0, **{"read.check.bar": 60.0})
    with pytest.raises(ValueError, match=r"unknown recipe settings 'read_stepz' \(did you mean 'read_steps'\?\)"):
        RecipeConfig.from_settings(read_stepz=3)


def test_stored_recipes_come_in_through_the_same_door(tmp_path):
    cfg = RecipeConfig.from_settings(out=str(tmp_path), **{"read.steps": 11, "sft.check.bar": 80.0})
    (tmp_path / "recipe.json").write_text(json.dumps(saved_recipe(cfg)))
    back = RecipeConfig.from_settings(**read_recipe(tmp_path), out=str(tmp_path))
    assert saved_recipe(back) == saved_recipe(cfg)
    stored = saved_recipe(cfg)  # a format-2 file written before phases said what they freeze and take alone
    for st in ("base", "sft"):
        for p in stored[st]["phases"]:
            p.pop("frozen")
            if p["check"]:
                p["check"].pop("only")
    (tmp_path / "recipe.json").write_text(json.dumps(stored))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = RecipeConfig.from_settings(**read_recipe(tmp_path), out=str(tmp_path))
    assert again.phase("drill").frozen == "vision,merger" and again.phase("sft_read").check.only == "read_one"
    assert saved_recipe(again) == saved_recipe(cfg)  # read as it ran: the folder's stages are reused
