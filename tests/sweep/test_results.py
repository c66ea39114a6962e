"""A sweep folder read back for each kind of command: a lesson's key numbers and a recipe's table compare run by run
(one column), an evaluation's per-question scores question by question."""

import json
import math

import pytest

from r3lab.sweep.folder import prepare
from r3lab.sweep.results import load_sweep, notes, seed_differences
from r3lab.sweep.spec import spec_from_dict
from r3lab.sweep.status import RunStatus, write_status


def _done(d):
    write_status(d, RunStatus("done", exit_code=0, attempts=1, seconds=1.0))


def test_a_lessons_key_numbers_compare_run_by_run(tmp_path):
    spec = spec_from_dict({"command": "notebook 10", "grid": {"max_crops": [0, 2]}, "seeds": [0, 1, 2]})
    runs, _ = prepare(tmp_path / "sw", spec)
    for run, d in runs:
        (d / "notebook").mkdir()
        value = 0.2 + 0.5 * (run.point["max_crops"] > 0) + 0.01 * run.seed
        (d / "notebook" / "results.json").write_text(
            json.dumps([{"name": "10", "ok": True, "numbers": {"accuracy": value, "label": "x"}}])
        )
        _done(d)
    sweep = load_sweep(tmp_path / "sw")
    assert sweep.metrics() == ["accuracy"]  # the numeric key numbers
    frame = sweep.frame()
    assert frame["accuracy"].round(2).tolist() == [0.2, 0.21, 0.22, 0.7, 0.71, 0.72]
    (base, top) = sweep.summary()
    assert base.comparison is None and base.estimate.questions == 1 and top.comparison.diff == pytest.approx(0.5)
    assert seed_differences(sweep, {"max_crops": 2}, "accuracy") == pytest.approx({0: 0.5, 1: 0.5, 2: 0.5})
    assert "+0.500, +0.500, +0.500 by seed" in notes(sweep, [base, top])[0]


def test_a_recipes_table_and_a_failed_run(tmp_path):
    spec = spec_from_dict(
        {"command": "recipe", "settings": {"rows": "sft"}, "grid": {"rgrpo.steps": [1, 2]}, "seeds": [0, 1]}
    )
    runs, _ = prepare(tmp_path / "sw", spec)
    for k, (_run, d) in enumerate(runs):
        if k == 3:
            write_status(d, RunStatus("failed", "exit code 1", "error: x", 1, "recipe", attempts=1))
            continue
        (d / "recipe").mkdir()
        (d / "recipe" / "results.json").write_text(
            json.dumps({"rows": {"sft": {"all": {"accuracy": 0.5 + 0.1 * k}, "read_one": {"accuracy": 0.3}}}})
        )
        _done(d)
    sweep = load_sweep(tmp_path / "sw")
    assert sweep.metrics() == ["sft.all.accuracy"]
    values = sweep.frame()["sft.all.accuracy"].tolist()
    assert values[:3] == [0.5, 0.6, 0.7] and math.isnan(values[3])
    top = sweep.summary()[1]
    assert top.estimate.seeds == 1 and top.comparison.seeds == 1  # the failed seed left out of both
