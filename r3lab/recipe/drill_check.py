"""The base stage's drill check: has the text-only verdict drill taught the verdict?

The drill (comparisons without images, the reads written as text) is where the verdict over the grating's
pattern words is learned cheaply: a text-only step costs about a third of a comparison step with both crops.
How many drill steps it takes varies from seed to seed, and a verdict the drill has not taught does not come
from the comparison phase either for a long while (research/FINDINGS.md, comparison: one seed's verdict stayed
at chance through 1,800 comparison steps after a drill that left the text verdict at 45.5 %, and reached 94.5 %
after 150 once more drill had taken the text verdict to 80 %). So the recipe measures after the drill and adds
drill phases while the bar is not met, and stops with an error naming the settings if it never is.

The measurement is teacher-forced, like the verdict check but without images: for each held-out drill
comparison, whether the policy's log-prob of the true verdict and answer beats that of the flipped one.
"""

from __future__ import annotations

from ..data.grounding import build_drill
from ..data.world import WorldConfig
from ..train import dist
from .compare_check import prefers_true

SEED = 40_000  # the held-out drill comparisons' scenes by default (the recipe's: its drill phase's check.seed)


def text_verdict(
    policy, world: WorldConfig | None = None, n: int = 200, seed: int = SEED, reads: bool = True, batch: int = 16
) -> dict:
    """% of `n` held-out text-only comparisons (`build_drill`'s, no image) whose true verdict and answer the policy
    scores above the flipped ones (chance: 50). In a distributed run every rank calls it and scores its share of
    the batches (the same result on every rank)."""
    if n < 1:
        raise ValueError(f"text_verdict needs n >= 1 comparisons, got {n}")
    samples = build_drill(n, seed, world, policy.view, progress=False, reads=reads)
    right = sum(
        prefers_true(policy, [samples[i].reference(policy.view).tokenize(policy) for i in part], batch)
        for part in dist.deal(n, batch)
    )
    return {"n": n, "text_verdict": round(100 * dist.all_sum(right) / n, 1), "chance": 50.0}


def take(policy, recipe, phase) -> dict:
    """The drill's check (`checks.MEASURES["text_verdict"]`): `text_verdict`, the reads written as the drill's mix
    has them."""
    return text_verdict(policy, recipe.world_config(), phase.check.n, seed=phase.check.seed, reads=phase.mix.reads)
