"""Check measures are a registry: a new one is its module (with `take(policy, recipe, phase)`) plus one entry in
`checks.MEASURES`; taking a check looks its measure up, and the bar is never an input to the measurement."""

from dataclasses import asdict

import pytest

from r3lab.recipe import checks
from r3lab.recipe.checks import CheckError, Measure
from r3lab.recipe.curriculum import Check, Mix, Phase
from r3lab.recipe.recipe import Recipe, RecipeConfig
from r3lab.recipe.recipe_format import FORMAT_VERSION
from r3lab.recipe.report import curriculum_table, model_card

SIZES = {"n_train": 24, "n_eval": 3, "parallel": 1, "sft.batch": 4, "rgrpo.batch": 4, "rgrpo.group_size": 2}
# the new measure's module: what a user writes (a file of their own; here in tmp_path, on sys.path)
MODULE = '''
def take(policy, recipe, phase):
    """% of the model's parameters that are finite (the recipe's world and the phase's mix are there to read)."""
    import torch

    finite = sum(bool(torch.isfinite(p).all()) for p in policy.model.parameters())
    return {"n": phase.check.n, "finite": round(100 * finite / len(list(policy.model.parameters())), 1)}
'''


@pytest.fixture
def finite(tmp_path, monkeypatch):
    (tmp_path / "finite_check.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    measure = Measure(
        "finite_check",
        "finite",
        "parameters finite",
        "training",  # the one registration
        lambda r, f: (f"{r['finite']} % of the parameters are finite ({f})", ""),
        "so the next phase would train NaNs",
        "Finite check (every parameter, after the phase)",
        lambda r: f"{r['finite']} % of the parameters finite",
    )
    monkeypatch.setitem(checks.MEASURES, "finite", measure)
    return measure


def _cfg(out, bar: float) -> RecipeConfig:
    return RecipeConfig.from_settings(
        out=str(out),
        **SIZES,
        base={
            "batch": 4,
            "phases": [
                Phase("ground", 1, 1e-3, Mix(world="grounding", samples=4)),
                Phase("settle", 0, 1e-3, check=Check("finite", n=1, bar=bar, more=1, rounds=0)),
            ],
        },
    )


def test_a_new_check_measure_is_one_module_and_one_registration(finite, tmp_path):
    cfg = _cfg(tmp_path / "ok", 100.0)
    Recipe(cfg, progress=False).train_stage("base")
    [row] = checks.load(tmp_path / "ok" / "logs", "settle")
    assert (row["round"], row["steps"], row["finite"]) == (0, 0, 100.0)
    assert "| base | settle | " in curriculum_table(cfg) and "parameters finite (1 held-out)" in curriculum_table(cfg)
    card = model_card(
        {"config": {"format_version": FORMAT_VERSION, **asdict(cfg)}, "rows": {}, "seconds": {}, "settle_checks": [row]}
    )
    assert "## Finite check (every parameter, after the phase)" in card and "100.0 % of the parameters" in card
    (tmp_path / "half_check.py").write_text(MODULE.replace("round(100 *", "round(50 *"))  # below the bar
    checks.MEASURES["finite"] = Measure(**{**finite.__dict__, "module": "half_check"})
    with pytest.raises(
        CheckError,
        match=r"stage base: after 0 training steps 50\.0 % of the parameters are finite "
        r".*settle\.check\.bar: 100\.0 %\), so the next phase would train NaNs",
    ):
        Recipe(_cfg(tmp_path / "below", 100.0), progress=False).train_stage("base")


def test_an_unknown_measure_is_refused_and_only_takes_a_registered_part():
    with pytest.raises(ValueError, match=r"measure = 'finit'.*'where'"):
        Check("finit")
    with pytest.raises(ValueError, match=r"Check\.only = 'count': the 'sft' measure takes alone one of"):
        Check("sft", only="count")
    assert Check("sft_read", only="read_one").only == "read_one"


SEEN = []


def take(policy, recipe, phase):  # a measure with a part (`only`): the sft measure's shape
    SEEN.append(phase.check.only)
    return {"n": 2, "read_one": 80.0, **({} if phase.check.only else {"compare_two": 90.0})}


def test_only_measures_its_part_while_below_the_bar_then_the_whole(monkeypatch):
    monkeypatch.setitem(
        checks.MEASURES, "sft_read", Measure(**{**checks.MEASURES["sft_read"].__dict__, "module": __name__})
    )
    SEEN.clear()
    phase = Phase("sft_read", check=Check("sft_read", n=2, bar=90.0, only="read_one"))
    assert checks.take(None, RecipeConfig(), phase) == {"n": 2, "read_one": 80.0} and SEEN == ["read_one"]
    phase.check.bar = 70.0  # passes: the whole measure, on the same state
    assert checks.take(None, RecipeConfig(), phase)["compare_two"] == 90.0 and SEEN[1:] == ["read_one", ""]
