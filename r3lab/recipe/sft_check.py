"""The SFT stage's check: does the SFT model meet the SFT's targets yet, and so stop where R-GRPO has room?

How many SFT steps a base needs before compare_two (the family learned last: its second crop) reaches the card's
bar depends on the base: seed 0's base reads 88.7 % of compare_two after 300 steps, seed 1's 78.7 %
(research/FINDINGS.md: R-GRPO). A longer SFT for every seed leaves R-GRPO nothing to add on read_one, so the recipe
trains a short SFT, measures, and adds SFT phases only while compare_two is below the bar.

The measurement is the evaluation's own: greedy rollouts, with their crops, on `n` held-out questions of each
detail family and of control (a seed of their own, never the evaluation's), scored by the recipe's reward. Control
is recorded, not a bar: a read_one phase can cost it (research/FINDINGS.md: read_one learned last).

The sft_read phase's check is this measure too, read_one held to its bar (`Check.only="read_one"`): read_one is
learned last, and the SFT adds short phases at the whole mix only until read_one passes the card's bar, so it stops
where R-GRPO has room whatever the seed (research/FINDINGS.md: where the SFT stops). While below the bar read_one is
measured alone, a third of the rollouts; the whole row on the state that passes.
"""

from __future__ import annotations

import math

from ..core.settings import short
from ..data.vlir import build_samples
from ..data.world import WorldConfig
from ..evaluation.evaluation import EvalConfig, evaluate_rows

SEED = 40_000  # the held-out questions' scenes by default (the recipe's: its SFT phase's check.seed; never eval_seed)
FAMILIES = ("read_one", "compare_two")
MEASURED = FAMILIES + ("control",)  # control answered without a crop: what the SFT's last phases may cost it


def measure(
    policy, world: WorldConfig, eval_config: EvalConfig, n: int = 300, seed: int = SEED, only: str = ""
) -> dict:
    """% right on `n` held-out questions per detail family and of control under `eval_config` (the recipe's SFT
    row: greedy, with crops), the detail families' crop IoU, the % of their crops holding the detail, and the % of
    control questions cropped; with `only` (a detail family) that family's % alone, on the same questions. In a
    distributed run every rank calls it and rolls out its share of the questions."""
    if n < 1:
        raise ValueError(f"the SFT check needs n >= 1 questions per family, got {n}")
    if only and only not in FAMILIES:
        raise ValueError(f"the SFT check measures one family alone among {FAMILIES}, got only={short(only)}")
    samples = build_samples(n * len(MEASURED), seed, list(MEASURED), world, view=policy.view, progress=False)
    detail = [x for x in samples if x.family in ((only,) if only else FAMILIES)]  # the crop measures: detail alone
    was_training = policy.model.training
    try:
        rows = evaluate_rows(policy, detail, eval_config)  # dealt out over the ranks of the SFT's DDP run
        control = None if only else evaluate_rows(policy, [x for x in samples if x.family == "control"], eval_config)
    finally:
        policy.model.train(was_training)

    def pct(v, scale=100, digits=1):  # None where nothing was measured (no crop made: no IoU)
        return None if v is None or math.isnan(v) else round(scale * v, digits)

    if only:
        return {"n": n, only: pct(rows[only]["accuracy"])}
    return {
        "n": n,
        **{f: pct(rows[f]["accuracy"]) for f in FAMILIES},
        "crop_iou": pct(rows["all"]["crop_iou"], 1, 3),
        "contains_detail": pct(rows["all"]["contains_detail"]),
        "control": pct(control["control"]["accuracy"]),
        "control_crop_rate": pct(control["control"]["crop_rate"]),
    }


def take(policy, recipe, phase) -> dict:
    """The SFT phases' checks (`checks.MEASURES["sft"]` and `["sft_read"]`): `measure` under the recipe's SFT row's
    evaluation, `check.only`'s family alone where it names one."""
    c = phase.check
    return measure(policy, recipe.world_config(), recipe.eval_config("sft"), c.n, seed=c.seed, only=c.only)
