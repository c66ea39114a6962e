"""The commands a sweep runs besides training and eval, for real: a lesson (`notebook NN`, its key numbers the
metrics) and the recipe (its table's rows the metrics), each run the command's own process in its own folder with
the seed as the command's seed."""

import json

import pytest

from r3lab.cli.app import main
from r3lab.course.lesson import SMOKE_RECIPE
from r3lab.sweep.results import load_sweep

pytestmark = pytest.mark.slow


def _sweep(tmp_path, spec, *flags):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return main(["sweep", str(path), "--out", str(tmp_path / "sw"), "--workers", "2", *flags])


def test_a_lesson_swept_over_a_parameter_reports_its_key_numbers(tmp_path):
    spec = {
        "command": "notebook 10",
        "settings": {"smoke": True},
        "grid": {"family": ["compare_two"]},  # one run: each run is a kernel and a lesson
        "seeds": [3],
    }
    assert _sweep(tmp_path, spec) == 0
    sweep = load_sweep(tmp_path / "sw")
    (lesson,) = json.loads(
        (tmp_path / "sw" / "runs" / sweep.runs[0]["folder"] / "notebook" / "results.json").read_text()
    )
    assert lesson["ok"] and lesson["parameters"]["seed"] == 3 and lesson["parameters"]["family"] == "compare_two"
    numeric = sorted(k for k, v in lesson["numbers"].items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    assert numeric and sweep.metrics() == numeric  # the lesson's own key numbers, as it reported them
    frame = sweep.frame()
    assert list(frame["family"]) == ["compare_two"] and list(frame["state"]) == ["done"]
    assert all(frame[m].notna().all() for m in numeric)
    assert (tmp_path / "sw" / "sweep.html").is_file()


def test_the_recipe_swept_over_a_setting_path_reports_its_rows(tmp_path):
    settings = {k: v for k, v in SMOKE_RECIPE.items() if k != "sft.steps"}  # the lesson's smoke recipe
    spec = {
        "command": "recipe",
        "settings": {**settings, "rows": "sft"},
        "grid": {"sft.steps": [1]},  # one run: the path reaches its phase
        "seeds": [4],
        "metrics": ["sft.read_one.accuracy"],
    }
    assert _sweep(tmp_path, spec, "--report", "false") == 0
    sweep = load_sweep(tmp_path / "sw")
    for r in sweep.runs:
        recipe = json.loads((tmp_path / "sw" / "runs" / r["folder"] / "recipe" / "recipe.json").read_text())
        phase = next(p for p in recipe["sft"]["phases"] if p["name"] == "sft")  # the path sft.steps: phase sft's
        assert recipe["seed"] == 4 and phase["steps"] == r["point"]["sft.steps"]
    frame = sweep.frame()
    assert list(frame["sft.steps"]) == [1] and frame["sft.read_one.accuracy"].between(0, 1).all()


def test_an_sft_sweep_trains_from_the_shipped_base_and_evaluates_each_run(tmp_path):
    from r3lab.recipe.shipping import SHIPPED

    held, train = tmp_path / "held", tmp_path / "train"
    assert main(["data", "build", "--out", str(held), "--n", "3", "--seed", "5", "--filter", "false"]) == 0
    assert main(["data", "build", "--out", str(train), "--n", "4", "--seed", "6", "--filter", "false"]) == 0
    spec = {
        "command": "train sft",
        "settings": {"policy": str(SHIPPED / "r3-tiny-base"), "data": str(train), "steps": 1, "batch-size": 2},
        "seeds": [7],
        "eval": {"data": str(held), "n": 3, "max-new-tokens": 32},
    }
    assert _sweep(tmp_path, spec, "--report", "false") == 0
    (run,) = load_sweep(tmp_path / "sw").runs
    d = tmp_path / "sw" / "runs" / run["folder"]
    state = json.loads(next((d / "train").glob("step_*/state.json")).read_text())
    assert state["config"]["seed"] == 7 and state["step"] == 1
    assert len(json.loads((d / "eval" / "scores.json").read_text())) >= 1
