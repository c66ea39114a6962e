"""Sample sources are a table of builders: a new source is one builder plus one entry in `phase_data.SOURCES`; what a
phase leaves untrained is its own setting (`Phase.frozen`), not read from its source."""

import json

import pytest

from r3lab.data.grounding import build_base
from r3lab.recipe import phase_data
from r3lab.recipe.curriculum import Mix, Phase
from r3lab.recipe.phase_data import Source
from r3lab.recipe.recipe import Recipe, RecipeConfig
from r3lab.recipe.report import curriculum_table

SIZES = {"n_train": 24, "n_eval": 3, "parallel": 1, "sft.batch": 4, "rgrpo.batch": 4, "rgrpo.group_size": 2}


def test_a_new_sample_source_is_one_builder_and_one_entry(tmp_path, monkeypatch):
    built = []

    def closeups_only(recipe, stage, phase, view, k):  # the builder: any samples a step can train on
        built.append((stage, phase.name, k))
        return build_base(
            phase.steps * recipe.cfg.base.batch,
            recipe.cfg.data_seed + phase.seed,
            1.0,
            recipe.cfg.world_config(),
            view=view,
            progress=False,
        )

    def enough(c, stage, phase):
        if phase.mix.samples and phase.mix.samples < getattr(c, stage).batch:
            raise ValueError(f"{phase.name}.mix.samples: too few for a step")

    monkeypatch.setitem(phase_data.SOURCES, "closeups", Source(closeups_only, lambda mix: "close-ups only", enough))
    cfg = RecipeConfig.from_settings(
        out=str(tmp_path),
        **SIZES,
        base={"batch": 4, "phases": [Phase("look", 2, 1e-3, Mix(source="closeups"), seed=7)]},
    )
    assert "| base | look | close-ups only | 2 |" in curriculum_table(cfg)
    Recipe(cfg, progress=False).train_stage("base")
    assert built == [("base", "look", -1)]
    assert [json.loads(x)["step"] for x in (tmp_path / "logs" / "base" / "log.jsonl").read_text().splitlines()] == [2]
    with pytest.raises(ValueError, match=r"look\.mix\.samples: too few"):
        RecipeConfig.from_settings(
            **SIZES, base={"batch": 4, "phases": [Phase("look", 2, 1e-3, Mix(source="closeups", samples=2))]}
        )
    with pytest.raises(ValueError, match=r"Mix\.source = 'closeup' is not allowed.*'closeups'"):
        Mix(source="closeup")


def test_what_a_phase_leaves_untrained_is_its_own_setting():
    cfg = RecipeConfig()
    drill = cfg.phase("drill")
    assert drill.frozen == "vision,merger" and drill.mix.source == "drill"
    sft = cfg.phase_config("base", drill)
    assert sft.freeze_vision and sft.freeze_merger
    drill.frozen = ""  # a drill that trains the vision tower too: the source no longer decides it
    assert not cfg.phase_config("base", drill).freeze_vision
    read = cfg.phase("read")
    read.frozen = "vision"
    c = cfg.phase_config("base", read)
    assert c.freeze_vision and not c.freeze_merger
    with pytest.raises(ValueError, match=r"look\.frozen names \['lm'\]: a phase may leave untrained"):
        Phase("look", frozen="vision,lm")
