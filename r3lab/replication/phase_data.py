"""The base stage's later phases' samples, as a RecipeConfig sets them (the read, comparison and drill phases)."""
from __future__ import annotations

from ..data.grounding import build_base, build_drill
from .recipe_config import RecipeConfig


def read_data(c: RecipeConfig, steps: int, seed: int, view, progress: bool | None, comparisons: float = 0.0,
              style: str = "answer", closeups: float | None = None) -> list:
    """A read (or comparison) phase's samples: close-ups (`closeups` of the others, by default `read_closeups`;
    the rest grounding questions) in the recipe's world, control questions among them."""
    return build_base(steps * c.base_batch, seed, c.read_closeups if closeups is None else closeups,
                      c.world_config(), view=view, progress=progress, comparisons=comparisons,
                      comparison_crops=c.compare_crops, closeup_style=style,
                      controls=c.base_controls if "control" in c.family_list else 0.0)


def drill_data(c: RecipeConfig, steps: int, seed: int, view, progress: bool | None) -> list:
    """A drill phase's samples: comparisons without images, `drill_ground_share` of them grounding questions."""
    return build_drill(steps * c.base_batch, seed, c.world_config(), view, progress=progress,
                       reads=c.compare_drill_reads, grounding=c.drill_ground_share, pairs=c.pairs_share)
