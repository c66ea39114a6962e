"""The base stage's verdict check: given both reads, does the policy say "the same" / "different" rightly?

Over the grating's five pattern words (alike in the embeddings) the verdict is a late transition, and how late
depends on the run (research/miniature/README.md: compare_two). A base that reads both crops but guesses the
verdict leaves compare_two at chance however well SFT and R-GRPO place the crops, so the recipe measures after
its comparison phase, adds comparison phases while the bar is not met, and stops with an error naming the
settings if it never is.

The measurement is teacher-forced: for each held-out comparison (`comparison_sample` with both crops in place,
the two reads given), whether the policy's log-prob of the true verdict and answer beats that of the flipped one.
"""

from __future__ import annotations

import torch

from ..core.batch import collate
from ..core.settings import short
from ..core.trajectory import MODEL, Piece
from ..data.grounding import comparison_sample
from ..data.world import WorldConfig
from ..engine.scoring import TokenScorer, token_logprobs
from ..train import dist
from . import ground_check

SEED = 30_000  # the held-out comparisons' scenes by default (the recipe's: its comparison phase's check.seed)
# each true ending's flipped twin (r3lab.data.vlir.COMPARE_END's two templates, and the answer)
FLIPS = (
    (", so they are the same.", ", so they are different."),
    (" too: the same ", ": a different "),
    ("<answer>yes</answer>", "<answer>no</answer>"),
)


def flipped(text: str) -> str:
    """`text` (a comparison's ending: verdict and answer) with the opposite verdict and answer."""
    out = text
    for a, b in FLIPS:
        out = out.replace(a, b) if a in text else out.replace(b, a)
    if out == text or sum(a in text or b in text for a, b in FLIPS) != 2:
        raise ValueError(f"not a comparison's ending (one verdict and one answer): {short(text)}")
    return out


@torch.no_grad()
def prefers_true(policy, refs, batch: int = 16) -> int:
    """How many of `refs` (tokenized comparison trajectories, each ending with its verdict and answer) the policy
    scores above the same trajectory with the flipped ending."""
    scorer, was_training = TokenScorer(policy.model), policy.model.training
    policy.model.eval()
    right = 0
    try:
        for k in range(0, len(refs), batch):
            trajs = []
            for ref in refs[k : k + batch]:
                alt, last = ref.copy(), ref.pieces[-1]
                text = flipped(last.text)
                alt.pieces[-1] = Piece(MODEL, text, ids=policy.encode(text), tag=last.tag)
                trajs += [ref, alt]
            scores = token_logprobs(scorer, collate(trajs, policy)).sum(-1)  # over the model's own tokens
            right += int((scores[0::2] > scores[1::2]).sum())
    finally:
        policy.model.train(was_training)
    return right


def verdict_accuracy(policy, world: WorldConfig | None = None, n: int = 200, seed: int = SEED, batch: int = 16) -> dict:
    """% of `n` held-out comparisons whose true verdict the policy scores above the flipped one (chance: 50). In a
    distributed run every rank calls it and scores its share of the batches (the same result on every rank)."""
    if n < 1:
        raise ValueError(f"verdict_accuracy needs n >= 1 comparisons, got {n}")
    right = sum(
        prefers_true(
            policy,
            [
                comparison_sample(seed, i, world, policy.view, crops=True).reference(policy.view).tokenize(policy)
                for i in part
            ],
            batch,
        )
        for part in dist.deal(n, batch)
    )
    return {"n": n, "verdict": round(100 * dist.all_sum(right) / n, 1), "chance": 50.0}


def measure(policy, world: WorldConfig, n: int, ground_world: dict | None = None) -> dict:
    """The recipe's check: `verdict_accuracy`, and with `ground_world` (the grounding phase's world) the box
    centres on the named landmark in as many grounding questions: the drill takes that answer away."""
    m = verdict_accuracy(policy, world, n)
    if ground_world is not None:
        m["centre_on_named"] = ground_check.measure(policy, ground_world, n)["centre_on_named"]
    return m


def take(policy, recipe, phase) -> dict:
    """The comparison phase's check (`checks.MEASURES["verdict"]`): `verdict_accuracy` on its held-out comparisons."""
    return verdict_accuracy(policy, recipe.world_config(), phase.check.n, seed=phase.check.seed)
