"""A sweep's spec: its keys, names as the command spells them, its points x seeds, each run's identity and folder,
and the processes a run is (the command's own CLI, the seed as its --seed)."""

import json
from pathlib import Path

import pytest

from r3lab.sweep.folder import check_same, prepare, steps_of
from r3lab.sweep.spec import read_spec, spec_from_dict

BASE = {
    "command": "train rgrpo",
    "settings": {"data": "d", "steps": 3},
    "grid": {"reward_region_weight": [0.0, 1.0]},
    "seeds": [0, 1, 2],
    "eval": {"data": "held", "n": 10},
    "baseline": {"reward-region-weight": 0.0},
}


def test_points_cross_seeds_and_names_are_the_commands():
    spec = spec_from_dict(
        {**BASE, "grid": {"reward_region_weight": [0.0, 1.0], "--group-size": [2, 4]}, "baseline": {}}
    )
    assert list(spec.grid) == ["reward-region-weight", "group-size"]  # flags: dashes
    assert spec.points()[:2] == [
        {"reward-region-weight": 0.0, "group-size": 2},
        {"reward-region-weight": 0.0, "group-size": 4},
    ]
    runs = spec.runs()
    assert len(runs) == 4 * 3 and len({r.id for r in runs}) == 12 and len({r.folder for r in runs}) == 12
    assert runs[0].folder.startswith("reward-region-weight=0.0_group-size=2_seed=0-")
    again = spec_from_dict(
        {**BASE, "grid": {"reward-region-weight": [0.0, 1.0], "group-size": [2, 4]}, "baseline": {}}
    ).runs()
    assert [r.id for r in again] == [r.id for r in runs]  # identity: command, settings, eval, seed
    recipe = spec_from_dict({"command": "recipe", "grid": {"rgrpo-steps": [1]}, "seeds": [0]})
    assert list(recipe.grid) == ["rgrpo_steps"]  # --set paths: underscores


@pytest.mark.parametrize(
    "change, match",
    [
        ({"comand": "eval"}, r"unknown key 'comand' \(did you mean command\?\)"),
        ({"command": "train rgrp"}, r"did you mean train rgrpo"),
        ({"command": "notebook"}, "notebook NN"),
        ({"seeds": 3}, r"seeds must be a list.*\[0, 1, 2\]"),
        ({"seeds": [0, 0]}, "repeat"),
        ({"grid": {"steps": [1, 2]}}, "in both settings and grid"),
        ({"grid": {"reward-region-weight": []}}, "non-empty list"),
        ({"grid": {"reward-region-weight": [1.0, 1.0]}}, "repeats a value"),
        ({"settings": {"seed": 1, "data": "d"}}, "seeds: \\[..\\] instead"),
        ({"settings": {"out_dir": "x", "data": "d"}}, "set by the sweep"),
        ({"baseline": {"reward-region-weight": 0.5}}, "not among grid"),
        ({"baseline": {"reward-wieght": 0.0}}, "not a grid name"),
        ({"eval": {}}, "training sweep evaluates every run"),
        ({"eval": {"data": "held", "policy": "x"}}, "set by the sweep"),
        ({"metrics": "accuracy"}, "metrics must be a list"),
    ],
)
def test_a_malformed_spec_is_named_with_its_fix(change, match):
    with pytest.raises(ValueError, match=match):
        spec_from_dict({**BASE, **change}, "spec.yaml")


@pytest.mark.parametrize(
    "change",
    [
        {"grid": {"reward-region-weight": [0.0] * 1_000_000}},
        {"seeds": ["x" * 1_000_000]},
        {"metrics": "m" * 1_000_000},
        {"command": "notebook " + "5" * 1_000_000},
        {"grid": {"k" * 1_000_000: []}},
        {"settings": {"data": "d", "steps": 3, "k" * 1_000_000: 1}, "grid": {"k" * 1_000_000: [1]}},
    ],
)
def test_a_malformed_spec_of_megabytes_is_named_in_a_line(change):
    with pytest.raises(ValueError, match="spec.yaml: ") as e:
        spec_from_dict({**BASE, **change}, "spec.yaml")
    assert len(str(e.value)) < 1_000


def test_validate_gives_the_spec_back_for_a_chain():
    spec = spec_from_dict(BASE)
    assert spec.validate() is spec
    spec.seeds = [0, 0]  # changed in place: validate() judges it again
    with pytest.raises(ValueError, match="seeds repeat"):
        spec.validate()


def test_read_spec_names_the_file_and_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("command: eval\nsettings: {data: d\n")
    with pytest.raises(ValueError, match=r"s.yaml:\d+: not YAML"):
        read_spec(p)
    p.write_text("command: eval\ncommand: recipe\n")
    with pytest.raises(ValueError, match="repeats"):
        read_spec(p)
    p.write_text("command: eval\nsettings: {data: d, n: 4, temperature: 2e-05}\n")
    assert read_spec(p).settings["temperature"] == 2e-05  # a number, not YAML 1.1's text
    j = tmp_path / "s.json"
    j.write_text(json.dumps(BASE))
    assert read_spec(j).command == "train rgrpo"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_spec(tmp_path / "none.yaml")


def test_a_training_run_is_train_then_eval_of_its_checkpoint_then_scores(tmp_path):
    spec = spec_from_dict(
        {**BASE, "settings": {"data": "d", "steps": 3, "policy": "p", "dtype": "float32", "reward-region": "giou"}}
    )
    run = spec.runs()[4]
    train, ev, scores = steps_of(spec, run, tmp_path)
    assert train["module"] == "r3lab.cli" and train["args"][:2] == ["train", "rgrpo"]
    a = train["args"]
    assert a[a.index("--seed") + 1] == str(run.seed) and a[a.index("--out-dir") + 1] == str(tmp_path / "train")
    assert a[a.index("--reward-region-weight") + 1] == "1.0" and a[a.index("--resume") + 1] == "auto"
    e = ev["args"]
    assert e[:3] == ["eval", "--policy", str(tmp_path / "train")] and e[e.index("--dtype") + 1] == "float32"
    assert e[e.index("--necessity") + 1] == "false" and e[e.index("--n") + 1] == "10"  # necessity only when asked
    assert scores == {"name": "scores", "module": "r3lab.sweep.scores", "args": [str(tmp_path / "eval")]}


def test_recipe_and_notebook_runs_take_their_own_settings(tmp_path):
    rec = spec_from_dict({"command": "recipe", "settings": {"rows": "sft", "rgrpo.steps": 2}, "seeds": [3]})
    (step,) = steps_of(rec, rec.runs()[0], tmp_path)
    assert step["args"] == [
        "recipe",
        "--set",
        'rows="sft"',
        "--set",
        "rgrpo.steps=2",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "recipe"),
    ]
    nb = spec_from_dict(
        {"command": "notebook 50", "settings": {"n-eval": 4, "smoke": True, "out_dir": "x"}, "seeds": [1]}
    )
    (step,) = steps_of(nb, nb.runs()[0], tmp_path)
    assert step["args"] == [
        "notebooks",
        "run",
        "50",
        "-p",
        "n_eval",
        "4",
        "-p",
        "smoke",
        "True",
        "-r",
        "out_dir",
        "x",
        "-p",
        "seed",
        "1",
        "--out",
        str(tmp_path / "notebook"),
    ]


def test_a_resume_refuses_another_spec_unless_it_only_adds(tmp_path):
    spec = spec_from_dict(BASE)
    runs, notes = prepare(tmp_path / "sw", spec)
    assert not notes and len(runs) == 6 and all((d / "run.json").is_file() for _, d in runs)
    old = json.loads((tmp_path / "sw" / "sweep.json").read_text())["spec"]
    with pytest.raises(ValueError, match="settings differs"):
        check_same(old, spec_from_dict({**BASE, "settings": {"data": "d", "steps": 4}}), True, "sw")
    more = spec_from_dict({**BASE, "grid": {"reward-region-weight": [0.0, 1.0, 2.0]}, "seeds": [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="--extend"):
        check_same(old, more, False, "sw")
    assert check_same(old, more, True, "sw") == ["grid.reward-region-weight: adds [2.0]", "seeds: adds [3]"]
    with pytest.raises(ValueError, match="only adds"):
        check_same(old, spec_from_dict({**BASE, "seeds": [0, 1]}), True, "sw")
    assert check_same(old, spec_from_dict({**BASE, "metrics": ["crop_iou"]}), False, "sw") == [
        "metrics changed (the report reads the new one)"
    ]
    runs, _ = prepare(tmp_path / "sw", more, extend=True)
    assert len(runs) == 12 and {d.name for _, d in runs} >= {p.name for p in (tmp_path / "sw" / "runs").iterdir()}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty and holds no sweep"):
        prepare(tmp_path / "other", spec)
    assert Path(tmp_path / "other" / "x.txt").read_text() == "x"
