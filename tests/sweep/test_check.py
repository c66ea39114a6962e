"""Everything is checked before the first run: names the command does not know (with close matches), values it would
refuse (its own parser and config classes), metrics the held-out data cannot give, too many runs, a missing extra."""

import json

import pytest

from r3lab.cli.app import main
from r3lab.recipe.shipping import SHIPPED

SFT = str(SHIPPED / "r3-tiny-sft")


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    out = tmp_path_factory.mktemp("checkdata") / "held"
    assert main(["data", "build", "--out", str(out), "--n", "3", "--seed", "5", "--filter", "false"]) == 0
    return str(out)


def _sweep(tmp_path, **spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return main(["sweep", str(path), "--out", str(tmp_path / "sw")])


def _train(held, **more):
    return {
        "command": "train rgrpo",
        "settings": {"policy": SFT, "data": held, "steps": 1},
        "grid": {"reward-region-weight": [0.0, 1.0]},
        "seeds": [0, 1],
        "eval": {"data": held, "n": 3},
        **more,
    }


@pytest.mark.parametrize(
    "change, error, match",
    [
        (
            {"grid": {"reward-region-wieght": [0.0, 1.0]}, "baseline": {}},
            ValueError,
            r"`r3lab train rgrpo` has no setting 'reward-region-wieght' \(did you mean reward-region-weight or",
        ),
        (
            {"settings": {"policy": SFT, "data": "HELD", "steps": "many"}},
            ValueError,
            r"refuses it: argument --steps: invalid int value: 'many'",
        ),
        (
            {"grid": {"group-size": [3, 4]}, "baseline": {}},
            ValueError,
            r"point \{'group-size': 3\}, seed 0: settings: batch_size 8 must be a positive multiple of group_size 3",
        ),
        ({"settings": {"policy": SFT, "data": "HELD", "temperature": 0.0}}, ValueError, r"temperature = 0.0"),
        ({"eval": {"data": "HELD", "n": 3, "max-crop": 1}}, ValueError, r"eval:.*did you mean max-crops"),
        ({"eval": {"data": "nowhere"}}, FileNotFoundError, "data path nowhere does not exist"),
        ({"settings": {"policy": "no-such-policy", "data": "HELD"}}, FileNotFoundError, "policy no-such-policy"),
        ({"metrics": ["read_one.acuracy"]}, ValueError, r"reports no 'acuracy' \(did you mean accuracy\?\)"),
        ({"metrics": ["reed_one.accuracy"]}, ValueError, r"no family 'reed_one' \(did you mean read_one\?\)"),
    ],
)
def test_a_run_the_command_would_refuse_is_refused_before_any_run(held, tmp_path, change, error, match):
    spec = json.loads(json.dumps(_train(held, **change)).replace("HELD", held))
    with pytest.raises(error, match=match):
        _sweep(tmp_path, **spec)
    assert not (tmp_path / "sw").exists()  # nothing written, nothing run


def test_too_many_runs_and_the_other_commands_checks(held, tmp_path):
    spec = _train(held, grid={"reward-region-weight": [0.0, 0.5, 1.0]}, seeds=list(range(30)), baseline={})
    with pytest.raises(ValueError, match=r"makes 90 runs \(3 points x 30 seeds\), more than --max-points 64"):
        _sweep(tmp_path, **spec)
    with pytest.raises(ValueError, match="RecipeConfig"):
        _sweep(tmp_path, command="recipe", settings={"n_eval": -1}, seeds=[0])
    with pytest.raises(ValueError, match="has no parameter 'n_evals'"):
        _sweep(tmp_path, command="notebook 50", settings={"n_evals": 4}, seeds=[0])
    with pytest.raises(ValueError, match="must be within"):
        _sweep(tmp_path, command="notebook 50", settings={"n_eval": 0}, seeds=[0])
    with pytest.raises(ValueError, match="--address is for --backend ray"):
        main(["sweep", str(tmp_path / "spec.json"), "--out", str(tmp_path / "x"), "--address", "auto"])


def test_the_eval_columns_a_spec_is_judged_by_are_evaluations_own():
    from r3lab.cli.sweep_check import KNOWN_EVAL
    from r3lab.evaluation.evaluation import METRICS

    assert KNOWN_EVAL == METRICS
