"""Format 1 frozen: its files are read over the curriculum format 1 ran (format_1.json), never over today's defaults,
so changing a default phase cannot change what the shipped card says its checkpoints trained."""

import copy
import sys
from dataclasses import asdict

from r3lab.recipe import curriculum
from r3lab.recipe.curriculum import Check, Mix, Phase
from r3lab.recipe.format_1 import FORMAT_1, from_flat, to_flat
from r3lab.recipe.recipe_config import RecipeConfig
from r3lab.recipe.recipe_format import read_settings
from r3lab.recipe.report import curriculum_table, model_card
from r3lab.recipe.shipping import load_card


def _card_recipe(card: dict) -> RecipeConfig:
    return RecipeConfig.from_settings(**read_settings(card["config"], "the card"))


def test_a_changed_default_curriculum_does_not_change_what_the_shipped_card_says_it_trained(monkeypatch):
    card = load_card()
    assert card["config"].get("format_version", 1) == 1  # the shipped card is format 1
    before = _card_recipe(card)
    table, text = curriculum_table(before), model_card(copy.deepcopy(card))
    base_stage, sft_stage = curriculum.base_stage, curriculum.sft_stage

    def changed_base():  # a new phase, and defaults format 1 never stored: a phase seed, a check seed, a mix flag
        stage = base_stage()
        stage.phases.insert(2, Phase("look", 300, 1e-3, Mix(closeups=1.0), seed=7, why="Reading"))
        stage.phases[0].check.seed = 11_111
        stage.phase("read_first").mix.marks = False
        stage.phase("pairs").seed = 8
        return stage

    def changed_sft():
        stage = sft_stage()
        stage.phases[1].check = Check("sft_read", n=300, bar=72.0, more=25, rounds=12, seed=41_000, more_seed=200)
        return stage

    for module in [m for name, m in sys.modules.items() if name.startswith("r3lab")]:  # as an edit of curriculum.py
        for name, new in (("base_stage", changed_base), ("sft_stage", changed_sft)):
            if getattr(module, name, None) is getattr(curriculum, name):
                monkeypatch.setattr(module, name, new)
    today = RecipeConfig()
    assert today.phase("look") is not None and today.phase("ground").check.seed == 11_111  # the change took effect
    after = _card_recipe(card)
    assert asdict(after) == asdict(before) and after.phase("look") is None
    assert after.phase("read_first").mix.marks and after.phase("pairs").seed == 3
    assert after.phase("ground").check.seed == 10_000 and after.phase("sft_read").check.only == "read_one"
    assert curriculum_table(after) == table and model_card(copy.deepcopy(card)) == text
    assert "| base | look |" not in model_card(copy.deepcopy(card))


def test_format_1_reads_over_its_own_frozen_curriculum_and_writes_back_to_the_same_names():
    assert [p["name"] for st in ("base", "sft") for p in FORMAT_1[st]["phases"]] == [
        "ground",
        "pairs",
        "read_first",
        "read_focus",
        "read",
        "drill",
        "compare",
        "sft",
        "sft_read",
    ]
    values = from_flat({"read_steps": 0, "sft_read_rounds": 0, "base_lr": 5e-4})
    phases = {p["name"]: p for st in ("base", "sft") for p in values[st]["phases"]}
    assert phases["read"]["check"]["n"] == 0 and phases["sft_read"]["check"]["n"] == 0  # as format 1 ran a 0
    assert phases["sft"]["mix"]["without"] == "" and phases["ground"]["lr"] == phases["compare"]["lr"] == 5e-4
    assert phases["drill"]["lr"] == FORMAT_1["base"]["phases"][5]["lr"]  # base_lr never set the drill's
    assert values is not FORMAT_1 and FORMAT_1["base"]["phases"][4]["check"]["n"] == 200  # the frozen data untouched
    assert from_flat(to_flat(values)) == values
