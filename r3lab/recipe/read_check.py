"""The base stage's read check: does the policy read the detail from a crop the environment opened?

Reading a detail from the zoom arrives late, as binding names does (research/miniature/README.md: reading),
and how late depends on the run. A base that does not read leaves SFT nothing to build on (read_one and
compare_two at chance), so the recipe measures after its read phase, adds read phases while the bar is not
met, and stops with an error naming the settings if it never is.

The measurement is teacher-forced: for each held-out close-up (`closeup_sample`, the crop already opened,
answered with the class), the answer the policy scores highest among the detail's classes.
"""

from __future__ import annotations

import torch

from ..core.batch import collate
from ..core.prompt import IM_END
from ..core.trajectory import MODEL, Piece
from ..data.grounding import closeup_sample
from ..data.tasks import TaskConfig, answer_classes
from ..data.world import WorldConfig
from ..engine.scoring import TokenScorer, token_logprobs
from ..train import dist

SEED = 20_000  # the held-out close-ups' scenes by default (the recipe's: its read phase's check.seed)


@torch.no_grad()
def read_accuracy(
    policy, world: WorldConfig | None = None, n: int = 200, seed: int = SEED, tasks: TaskConfig | None = None
) -> dict:
    """% of `n` held-out close-ups whose true class the policy scores highest; with `chance` (100 / classes). In a
    distributed run every rank calls it and scores its share of the close-ups (the same result on every rank)."""
    if n < 1:
        raise ValueError(f"read_accuracy needs n >= 1 close-ups, got {n}")
    world, tasks = world or WorldConfig(), tasks or TaskConfig()
    classes = list(answer_classes(world, tasks.read_kinds[0]))
    scorer, was_training = TokenScorer(policy.model), policy.model.training
    policy.model.eval()
    right = 0
    try:
        for i in (i for part in dist.deal(n) for i in part):
            sample = closeup_sample(seed, i, world, policy.view)
            ref = sample.reference(policy.view).tokenize(policy)
            trajs = []
            for c in classes:  # the same close-up answered with each class
                t = ref.copy()
                t.pieces[-1] = Piece(MODEL, c + IM_END, ids=policy.encode(c + IM_END), tag="answer")
                trajs.append(t)
            scores = token_logprobs(scorer, collate(trajs, policy)).sum(-1)
            right += classes[int(scores.argmax())] == sample.answers[0]
    finally:
        policy.model.train(was_training)
    right = dist.all_sum(right)
    return {"n": n, "read_accuracy": round(100 * right / n, 1), "chance": round(100 / len(classes), 1)}


def take(policy, recipe, phase) -> dict:
    """The read phase's check (`checks.MEASURES["read"]`): `read_accuracy` on the check's held-out close-ups."""
    return read_accuracy(policy, recipe.world_config(), phase.check.n, seed=phase.check.seed)
