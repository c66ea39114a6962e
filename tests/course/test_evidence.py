"""What a replication table supports, read through the one recipe reader: the card's format-1 results and a run's
format-2 ones say the same about where the SFT stopped."""
import json

from r3lab.course.evidence import looking_and_reading
from r3lab.recipe.recipe_config import RecipeConfig, saved_recipe
from r3lab.recipe.shipping import load_card

ROW = {"accuracy": 0.6, "accuracy_lo": 0.55, "accuracy_hi": 0.65, "crop_rate": 0.9, "crop_iou": 0.5,
       "contains_detail": 0.8}


def _results(config: dict) -> dict:
    rows = {"sft": {"read_one": ROW}, "sft_rgrpo": {"read_one": dict(ROW, accuracy=0.7, accuracy_lo=0.66,
                                                                        accuracy_hi=0.74)}}
    return {"config": config, "rows": rows}


def test_the_sft_s_bar_is_read_from_a_recipe_of_either_format():
    card = load_card()  # format 1: "sft_read_min"
    said = [s for s in looking_and_reading(_results(card["config"])) if "% bar" in s]
    assert said and "72 % bar (`sft_read.check.bar`)" in said[0]
    run = json.loads(json.dumps(saved_recipe(RecipeConfig.from_settings(**{"sft_read.check.bar": 65.0}))))
    assert "sft_read_min" not in run  # format 2 holds no such key: the sentence used to vanish
    assert any("65 % bar" in s for s in looking_and_reading(_results(run)))
    assert not any("% bar" in s for s in looking_and_reading(_results({"format_version": 2})))  # no recipe: silent
