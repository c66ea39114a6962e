"""A phase's samples drawn from its mix (`curriculum.Mix`): the base stage's generated ones (grounding questions,
close-ups, comparisons, controls; text-only drills), for the phase itself or for the phase its check adds.

The VLIR phases draw from the recipe's one training set (`Recipe.vlir_samples`): only their order changes.
"""
from __future__ import annotations

from ..data.grounding import build_base, build_drill
from ..data.tasks import TaskConfig
from .curriculum import Phase
from .recipe_config import RecipeConfig


def phase_samples(c: RecipeConfig, stage: str, phase: Phase, view, k: int = -1, progress: bool | None = None) -> list:
    """Phase `phase`'s samples (with `k` >= 0: those of the phase added after its check's round k, `more` steps of
    them at data seed offset `more_seed` + k; else `mix.samples` or steps x batch at offset `seed`)."""
    mix, batch = phase.mix, getattr(c, stage).batch
    if mix.source == "vlir":
        raise ValueError(f"phase {phase.name} draws VLIR samples: the recipe's training set, not generated ones")
    n = (mix.samples or phase.steps * batch) if k < 0 else phase.check.more * batch
    seed = c.data_seed + (phase.seed if k < 0 else phase.check.more_seed + k)
    world = c.world_config(base=mix.world == "grounding")
    if mix.source == "drill":
        return build_drill(n, seed, world, view, progress=progress, reads=mix.reads, grounding=mix.grounding,
                           pairs=mix.pairs)
    return build_base(n, seed, mix.closeups, world, view=view, pairs=mix.pairs, progress=progress,
                      comparisons=mix.comparisons, comparison_crops=mix.crops, closeup_style=mix.style,
                      controls=mix.controls if "control" in c.family_list else 0.0,
                      tasks=TaskConfig(read_kinds=("colour",)) if mix.marks else None)
