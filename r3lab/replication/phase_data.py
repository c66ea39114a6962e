"""The base stage's later phases' samples, as a RecipeConfig sets them (the read, comparison and drill phases, and
the phases a check adds)."""
from __future__ import annotations

from ..data.grounding import build_base, build_drill
from ..data.tasks import TaskConfig
from .recipe_config import RecipeConfig


def pairs_data(c: RecipeConfig, view, progress: bool | None) -> list:
    """The pairs phase's samples: the grounding phase's world, two landmarks named in `pairs_share` of them."""
    return build_base(c.pairs_steps * c.base_batch, c.data_seed + 3, 0.0, c.world_config(base=True), view=view,
                      pairs=c.pairs_share, progress=progress)


def first_read_data(c: RecipeConfig, view, progress: bool | None) -> list:
    """The first read phase's samples: colour-mark close-ups (a detail the coarse view shows) and grounding questions."""
    return build_base(c.read_first_steps * c.base_batch, c.data_seed + 4, c.read_closeups, c.world_config(),
                      view=view, progress=progress, tasks=TaskConfig(read_kinds=("colour",)))


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


def added_data(c: RecipeConfig, kind: str, k: int, view, progress: bool | None) -> tuple[int, list]:
    """The steps and fresh samples (a seed of their own) of the base phase added after check `k` of `kind`
    ("ground", "read", "drill" or "compare")."""
    if kind == "ground":
        return c.ground_more, build_base(c.ground_more * c.base_batch, c.data_seed + 20 + k, c.base_closeups,
                                         c.world_config(base=True), view=view, pairs=c.base_pairs, progress=progress)
    if kind == "read":
        return c.read_more, read_data(c, c.read_more, c.data_seed + 40 + k, view, progress)
    if kind == "drill":
        return c.drill_more, drill_data(c, c.drill_more, c.data_seed + 80 + k, view, progress)
    return c.compare_more, read_data(c, c.compare_more, c.data_seed + 60 + k, view, progress, c.compare_share,
                                     c.compare_closeups, c.compare_closeup_share)
