"""A run's per-question scores (scores.json, what the sweep pairs question by question) average to the evaluation's
own numbers: each family's and `all`'s accuracy, crop rate, crops, crop IoU (over the questions that cropped),
answered, tokens and reward, as `r3lab eval` wrote them into results.json."""

import json
import math

import pytest

from r3lab.cli.app import main
from r3lab.recipe.shipping import SHIPPED
from r3lab.sweep.scores import PER_QUESTION, read_scores, write_scores


def test_the_scores_average_to_the_evaluations_numbers(tmp_path):
    held, out = tmp_path / "held", tmp_path / "eval"
    assert main(["data", "build", "--out", str(held), "--n", "9", "--seed", "11", "--filter", "false"]) == 0
    args = ["eval", "--policy", str(SHIPPED / "r3-tiny-sft"), "--data", str(held), "--n", "9", "--out", str(out)]
    assert main([*args, "--necessity", "false"]) == 0
    write_scores(out)
    questions = read_scores(out)
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(questions) == rows["all"]["n"] == 9 and len({q["sample_id"] for q in questions}) == 9
    checked = 0
    for family, row in rows.items():
        mine = [q for q in questions if family == "all" or q["family"] == family]
        assert mine, family
        for key in PER_QUESTION:
            if key not in row:
                continue
            values = [q[key] for q in mine if q[key] is not None]
            want = row[key]
            if not values:  # crop IoU of a family that never cropped
                assert want is None or math.isnan(want), (family, key, want)
                continue
            assert sum(values) / len(values) == pytest.approx(want, abs=1e-6), (family, key)
            checked += 1
    assert checked >= 4 * len(rows)  # accuracy, crop rate, crops, crop IoU at least, in every row
    with pytest.raises(ValueError, match="not a sweep's scores file"):
        (out / "scores.json").write_text("[]")
        read_scores(out)
