"""The shipped checkpoints: writing them with their model card, reading the card, starting a recipe from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ..core.env import SHIPPED
from ..data.vlir import build_samples
from ..data.world import WorldConfig
from ..evaluation.evaluation import EvalConfig, evaluate
from ..model.policy import load_policy
from .recipe_config import RERUNNABLE
from .recipe_format import read_settings
from .report import model_card


def ship(results: dict, out: str | Path, dest: str | Path) -> Path:
    """Copy the SFT and R-GRPO checkpoints to dest/r3-tiny-sft, dest/r3-tiny-rgrpo with MODEL_CARD.md."""
    out, dest = Path(out), Path(dest)
    pairs = (("base", "r3-tiny-base"), ("sft", "r3-tiny-sft"), ("rgrpo", "r3-tiny-rgrpo"))
    missing = [str(out / stage) for stage, _ in pairs if not (out / stage / "config.json").is_file()]
    if missing:  # checked before anything in dest is touched
        raise FileNotFoundError(f"{', '.join(missing)} holds no checkpoint: run the recipe with rows sft,sft_rgrpo")
    # the recipe's evaluation settings travel with the models, so `r3lab eval` reproduces the card by default
    settings = read_settings(results["config"], "the recipe's results")
    evaluation = {"rollout": settings["eval_rollout"], "reward": settings["reward"]}
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"ship destination {dest} is a file: give a folder, e.g. assets/checkpoints")
    for stage, name in pairs:
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(out / stage, dest / name)
        extra_path = dest / name / "r3lab.json"
        extra = json.loads(extra_path.read_text())
        # where this run loaded each start model from is a local path: it stays out of the shipped folder
        extra["meta"] = {**{k: v for k, v in extra.get("meta", {}).items() if k != "path"}, "evaluation": evaluation}
        extra_path.write_text(json.dumps(extra, indent=2))
    # the card's recipe holds what made the models, not where this run kept them (a local path) or how it ran
    config = {k: v for k, v in results["config"].items() if k not in RERUNNABLE}
    results = dict(
        results,
        config=config,
        check={name: card_scores(dest / name, config) for name in ("r3-tiny-sft", "r3-tiny-rgrpo")},
    )
    (dest / "MODEL_CARD.md").write_text(model_card(results))
    (dest / "card_results.json").write_text(json.dumps(results, indent=1))
    return dest


def card_set(config: dict, view, per_family: int = 8) -> list:
    """The small fixed set the model card's check numbers are measured on (seed eval_seed + 1)."""
    fams = [f.strip() for f in config["families"].split(",") if f.strip()]
    world = WorldConfig(**config.get("world", {}))  # the card's world, not today's default
    return build_samples(per_family * len(fams), config["eval_seed"] + 1, fams, world, view=view, progress=False)


def card_scores(path: str | Path, config: dict, per_family: int = 8) -> dict:
    """Greedy accuracy / crop rate / crops of a checkpoint on `card_set` (what the shipped-model test re-measures)."""
    policy = load_policy(path)
    settings = read_settings(config, "the card's recipe")
    res = evaluate(
        policy,
        card_set(config, policy.view, per_family),
        EvalConfig(rollout=settings["eval_rollout"], reward=settings["reward"]),
        progress=False,
    )
    return {k: res.rows["all"][k] for k in ("n", "accuracy", "crop_rate", "crops")}


def load_card(folder: str | Path = SHIPPED) -> dict:
    """The results behind a shipped model card (`card_results.json`: config, rows, stage times, checks)."""
    return json.loads((Path(folder) / "card_results.json").read_text())


def warm_start(
    out: str | Path, shipped: str | Path = SHIPPED, stages: Sequence[str] = ("base", "sft", "rgrpo")
) -> list[str]:
    """Copy shipped checkpoints (dest of `ship`) into a recipe folder as its base/, sft/ and rgrpo/ stages.

    Returns the stages copied; a later `run_recipe` with the same `out` trains only the rest.
    """
    out, shipped, done = Path(out), Path(shipped), []
    for stage, name in (("base", "r3-tiny-base"), ("sft", "r3-tiny-sft"), ("rgrpo", "r3-tiny-rgrpo")):
        if stage not in stages:
            continue
        if (shipped / name / "config.json").is_file() and not (out / stage / "config.json").is_file():
            shutil.copytree(shipped / name, out / stage, dirs_exist_ok=True)
            done.append(stage)
    if done:  # a card written from this folder must not present these stages as its own training
        with open(out / "PROVENANCE.md", "a") as f:
            f.write(f"- stages {', '.join(done)}: copied from {shipped} (not trained by this folder's recipe)\n")
    return done
