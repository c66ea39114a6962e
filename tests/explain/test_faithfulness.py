"""Pointing game, deletion / insertion curves, the random baseline and the summary."""

import pytest
import torch

from r3lab.explain.faithfulness import (
    cell_centres,
    chance_pointing,
    curves,
    pointing_game,
    random_map,
    summarize,
)
from r3lab.explain.patching import painted
from r3lab.explain.record import CropRecord
from r3lab.explain.stream import Stream, target_positions
from r3lab.testing import toy_trajectory


def test_pointing_game_and_chance():
    m = torch.zeros(3, 4)
    m[1, 2] = 5.0  # the cell spanning x 56..84, y 28..56 at 28 px cells
    assert pointing_game(m, (50, 20, 90, 60), 28) is True
    assert pointing_game(m, (0, 0, 50, 28), 28) is False
    assert chance_pointing((3, 4), 28, (0, 0, 56, 28)) == pytest.approx(2 / 12)
    assert cell_centres((3, 4), 28)[6].tolist() == [70.0, 42.0]
    with pytest.raises(ValueError, match="NaN"):
        pointing_game(torch.full((2, 2), float("nan")), (0, 0, 1, 1), 28)
    a, b = random_map((3, 4), "s/0"), random_map((3, 4), "s/0")
    assert torch.equal(a, b) and not torch.equal(a, random_map((3, 4), "s/1"))


def test_curves_start_and_end_where_they_must(policy):
    traj = toy_trajectory(policy)
    s, blank = Stream.of(policy, traj), Stream.of(policy, painted(traj, None))
    pos = target_positions(policy, traj, traj.events[0], "box")
    c = curves(s, blank, random_map(s.grid, "x"), pos, steps=4, chunk=4)
    with torch.no_grad():
        clean = float(s.logprobs(s.hidden(s.embeds), pos).mean().exp())
        empty = float(
            blank.logprobs(s.hidden(*s.swapped(blank, torch.ones(1, s.length, dtype=torch.bool))), pos).mean().exp()
        )
    assert c["fractions"] == [0, 0.25, 0.5, 0.75, 1.0]
    assert c["deletion"][0] == pytest.approx(clean, rel=1e-4) and c["insertion"][-1] == pytest.approx(clean, rel=1e-4)
    assert c["deletion"][-1] == pytest.approx(c["insertion"][0], rel=1e-4)
    assert c["deletion_auc"] == pytest.approx(sum((a + b) / 8 for a, b in zip(c["deletion"], c["deletion"][1:])))
    assert 0 < empty  # the blank image scores too: the baseline every curve starts or ends at


def test_summary_averages_what_was_measured():
    def rec(point, d):
        r = CropRecord("s", "read_one", 0, True, (0, 0, 1, 1), None, None, True, (1, 1), 28, (28, 28), "a")
        r.faithfulness = {
            "attention": {"pointing_game": point, "deletion_auc": d, "insertion_auc": 0.5},
            "random": {"pointing_game": 0.1, "deletion_auc": 0.4, "insertion_auc": 0.4},
        }
        return r

    out = summarize([rec(1.0, 0.2), rec(0.0, 0.4), rec(None, 0.3)])
    assert set(out) == {"methods"} and set(out["methods"]) == {"attention", "random"}
    a = out["methods"]["attention"]
    assert a == {"pointing_game": 0.5, "deletion_auc": pytest.approx(0.3), "insertion_auc": 0.5, "n": 3}
    assert summarize([]) == {"methods": {}}


def test_agreement_and_table():
    from r3lab.explain.faithfulness import agreement, table
    from r3lab.explain.record import MethodResult

    def rec(a, b, box, landmark):
        r = CropRecord("s", "read_one", 0, True, box, landmark, None, True, (2, 2), 28, (56, 56), "a")
        r.methods = {
            "attention": {"box": MethodResult("attention", "box", map=a)},
            "patching": {"box": MethodResult("patching", "box", map=b)},
        }
        return r

    recs = [
        rec([[1, 0], [0, 0]], [[1, 0], [0, 0.5]], (0, 0, 28, 28), (0, 0, 28, 28)),
        rec([[1, 0], [0, 0]], [[0, 0], [0, 1]], (28, 28, 56, 56), None),
    ]
    g = agreement(recs)
    assert g["n"] == 2 and g["methods"] == ["attention", "patching"]
    assert g["same_top"]["attention|patching"] == 0.5
    assert g["top_in_box"] == {"attention": 0.5, "patching": 1.0} and g["top_in_landmark"]["attention"] == 1.0
    assert -1 <= g["rank_corr"]["attention|patching"] <= 1
    md = table(
        {
            "methods": {
                "random": {"pointing_game": 0.1, "deletion_auc": 0.2, "insertion_auc": 0.3, "n": 2},
                "attention": {"pointing_game": None, "deletion_auc": 0.1, "insertion_auc": 0.4, "n": 2},
            }
        }
    )
    assert md.splitlines()[2].startswith("| attention | - |") and md.splitlines()[-1].startswith("| random |")


def test_a_method_that_did_not_run_is_named_with_its_reason():
    from r3lab.explain.faithfulness import agreement
    from r3lab.explain.record import MethodResult

    r = CropRecord("s-1", "read_one", 0, True, (0, 0, 28, 28), None, None, True, (2, 2), 28, (56, 56), "a")
    why = "captum is not installed: pip install 'r3lab[explain]'"
    r.methods = {
        "attention": {"box": MethodResult("attention", "box", map=[[1, 0], [0, 0]])},
        "integrated_gradients": {"box": MethodResult("integrated_gradients", "box", False, why)},
    }
    with pytest.raises(ValueError, match=r"integrated_gradients is not available on 's-1': captum is not installed"):
        agreement([r], "box", ["attention", "integrated_gradients"])
    assert agreement([r], "box", ["attention"])["n"] == 1  # what ran is still compared
    with pytest.raises(ValueError, match=r"r3lab\[explain\]"):
        pointing_game(r.map("integrated_gradients"), r.box, r.cell)
