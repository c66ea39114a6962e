"""What lesson 50 says about a replication table (`r3lab.course.evidence.looking_and_reading`): each number labelled
with the family it covers, and where the SFT stopped drawn from its checks, never a bar it overshot; the floor read
through the one recipe reader, so the card's format-1 results and a run's format-2 ones say the same."""

import json

from r3lab.course.evidence import looking_and_reading, sft_stop
from r3lab.recipe import load_card
from r3lab.recipe.recipe_config import RecipeConfig, saved_recipe


def test_the_cards_sentences_label_their_family_and_say_where_sft_stopped():
    card = load_card()
    text = " ".join(looking_and_reading(card))
    sft, rg = card["rows"]["sft"]["read_one"], card["rows"]["sft_rgrpo"]["read_one"]
    assert f"read_one crop IoU moves {sft['crop_iou']:.3f} → {rg['crop_iou']:.3f}" in text
    checks = card["sft_read_checks"]
    stop = sft_stop(card)
    assert f"floor of {card['config']['sft_read_min']:.0f} %" in stop
    assert f"from {checks[-2]['read_one']:.0f} % to {checks[-1]['read_one']:.0f} %" in stop
    assert f"the SFT row reads {sft['accuracy']:.1%}" in stop and stop in text
    assert sft["accuracy"] * 100 > card["config"]["sft_read_min"] + 5  # why "stopped at the bar" was wrong
    assert "stops at" not in text and "% bar" not in text


def test_a_run_without_a_floor_says_nothing_about_one():
    card = load_card()
    run = {"rows": card["rows"], "config": {}}
    assert sft_stop(run) == "" and not any("floor" in x for x in looking_and_reading(run))
    assert sft_stop({"rows": card["rows"], "config": {"format_version": 2}}) == ""
    run = json.loads(json.dumps(saved_recipe(RecipeConfig.from_settings(**{"sft_read.check.bar": 65.0}))))
    assert "sft_read_min" not in run  # format 2 holds no such key: the sentence used to vanish
    assert "floor of 65 %" in sft_stop({"rows": card["rows"], "config": run})
    assert sft_stop({"rows": card["rows"], "config": run}).endswith(
        f"reads {card['rows']['sft']['read_one']['accuracy']:.1%}: the floor is where training may stop, not where the "
        "model stopped."
    )


def test_the_miss_drawn_is_the_farthest_one_in_cells():
    from types import SimpleNamespace

    import torch

    from r3lab.course.evidence import clearest_miss, miss_cells
    from r3lab.explain.faithfulness import pointing_game

    def record(hot):  # a 6x6 grid of 10-px cells, the landmark on cells (1..2, 1..2)
        m = torch.zeros(6, 6)
        m[hot] = 1.0
        return SimpleNamespace(map=lambda method, target: m, cell=10, landmark=(10, 10, 30, 30), hot=hot)

    on, edge, far = record((1, 2)), record((1, 3)), record((5, 5))
    assert miss_cells(on, "attention") == 0.0 and pointing_game(on.map("", ""), on.landmark, on.cell)
    assert miss_cells(edge, "attention") == 0.5 and not pointing_game(edge.map("", ""), edge.landmark, edge.cell)
    assert abs(miss_cells(far, "attention") - 2.5 * 2**0.5) < 1e-9  # diagonal: centre (55, 55) from corner (30, 30)
    assert clearest_miss([edge, far], "attention") is far
