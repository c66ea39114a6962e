"""RolloutSettings.saved: a checkpoint's evaluation settings, then the caller's."""

from types import SimpleNamespace

import pytest

from r3lab.engine.config import RolloutSettings


def test_saved_settings_come_from_the_checkpoint_then_the_caller():
    nested = SimpleNamespace(
        meta={
            "evaluation": {
                "rollout": {"max_new_tokens": 128, "max_segment_tokens": 64, "temperature": 0.0, "newer_key": 1}
            }
        }
    )
    got = RolloutSettings.saved(nested, temperature=0.5)
    assert (got.max_new_tokens, got.max_segment_tokens, got.temperature, got.max_crops) == (128, 64, 0.5, 2)
    flat = SimpleNamespace(meta={"evaluation": {"max_new_tokens": 96}})  # r3lab.json before the nesting
    assert RolloutSettings.saved(flat).max_new_tokens == 96
    assert RolloutSettings.saved(SimpleNamespace(meta={})) == RolloutSettings()  # nothing saved: the defaults
    with pytest.raises(ValueError, match="no field"):
        RolloutSettings.saved(nested, max_tokens=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        RolloutSettings.saved(nested, max_new_tokens=0)


def test_the_engine_settings_are_checked_and_parsed():
    import argparse

    from r3lab.engine.config import parse_graphs

    assert [parse_graphs(v) for v in ("auto", "true", "0", "On")] == ["auto", True, False, True]
    with pytest.raises(argparse.ArgumentTypeError, match="auto, true or false"):
        parse_graphs("maybe")
    with pytest.raises(ValueError, match=r"RolloutSettings\.cache = 'paged' is not allowed"):
        RolloutSettings(cache="paged")
    with pytest.raises(ValueError, match=r"cuda_graphs = True needs cache='static'"):
        RolloutSettings(cache="dynamic", cuda_graphs=True)
    saved = SimpleNamespace(meta={"evaluation": {"rollout": {"max_new_tokens": 99, "cuda_graphs": True}}})
    got = RolloutSettings.saved(saved, cache="dynamic", cuda_graphs=False)  # how that machine ran it is not kept
    assert (got.max_new_tokens, got.cache, got.cuda_graphs) == (99, "dynamic", False)
    assert RolloutSettings.saved(saved).cuda_graphs == "auto"


def test_cache_and_cuda_graphs_reach_the_engine_from_every_config_and_command(monkeypatch, tmp_path):
    from r3lab.cli.app import build_parser
    from r3lab.cli.args import dataclass_values
    from r3lab.engine.config import RolloutConfig
    from r3lab.evaluation.evaluation import EvalConfig
    from r3lab.train.config import RGRPOConfig
    from r3lab.train.rgrpo import rollout_config

    args = build_parser(["train", "rgrpo"]).parse_args(
        ["train", "rgrpo", "--cache", "dynamic", "--cuda-graphs", "false"]
    )
    cfg = RGRPOConfig(**dataclass_values(RGRPOConfig, args))
    assert (rollout_config(cfg, 0).cache, rollout_config(cfg, 0).cuda_graphs) == ("dynamic", False)
    args = build_parser(["eval"]).parse_args(["eval", "--policy", "x", "--cuda-graphs", "true"])
    rollout = {k: v for k, v in dataclass_values(EvalConfig, args)["rollout"].items() if v is not None}
    assert RolloutConfig.of(EvalConfig(rollout=rollout).rollout).cuda_graphs is True
    saved = SimpleNamespace(meta={"evaluation": {"rollout": {"cache": "dynamic", "cuda_graphs": False}}})
    assert EvalConfig.for_policy(saved, rollout={"cuda_graphs": True}).rollout.cache == "static"  # not the saved
    import r3lab.cli.recipe as cli_recipe
    from r3lab.cli.app import main

    seen = []  # the RecipeConfig `r3lab recipe` would run (nothing trained)
    monkeypatch.setattr(cli_recipe, "run_recipe", lambda cfg: seen.append(cfg) or {"rows": {}, "config": {"out": "x"}})
    monkeypatch.setattr(cli_recipe, "markdown_table", lambda results: "")
    main(["recipe", "--out", str(tmp_path), "--train-cache", "dynamic", "--eval-cuda-graphs", "false"])
    assert (seen[0].train_rollout.cache, seen[0].eval_rollout.cuda_graphs) == ("dynamic", False)
    assert (seen[0].eval_rollout.cache, seen[0].train_rollout.cuda_graphs) == ("static", "auto")


def test_a_recipe_folder_goes_on_when_only_the_engine_settings_changed(tmp_path):
    import json

    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.recipe.recipe_folder import check_folder

    check_folder(RecipeConfig(out=str(tmp_path)), tmp_path)
    graphs_off = RecipeConfig(out=str(tmp_path), train_rollout={"cache": "dynamic", "cuda_graphs": False})
    check_folder(graphs_off, tmp_path)  # the same stages: reused, and the parallel jobs read the new settings
    assert json.loads((tmp_path / "recipe.json").read_text())["train_rollout"]["cache"] == "dynamic"
    with pytest.raises(ValueError, match="train_rollout"):  # a setting that changes what is written: refused
        check_folder(RecipeConfig(out=str(tmp_path), train_rollout={"max_crops": 3}), tmp_path)


def test_trl_refuses_engine_settings_it_cannot_use():
    from r3lab.integrations.trl_train import TRLConfig

    with pytest.raises(ValueError, match="TRL generates its rollouts itself"):
        TRLConfig(rollout=RolloutSettings(max_new_tokens=64, max_segment_tokens=64, cache="dynamic"))
