"""What guessing scores: the accuracy of a uniform guess among the answers a question allows, per family.

`chance_levels(tasks, world)` for the synthetic world's families (the line a figure of accuracies needs, and the
level every audit key is set against); `chance_of(samples)` for any samples: the world's levels for the world's
families, else one over the number of distinct answers the family's samples take (a benchmark's options).
"""

from __future__ import annotations

from typing import Sequence

from ..core.settings import short
from ..data.tasks import SIDES, TaskConfig, answer_classes
from ..data.world import WorldConfig
from ..train.rewards import normalize_answer

WORLD = ("read_one", "compare_two", "count", "control")  # the families `chance_levels` knows


def chance_levels(
    tasks: TaskConfig | None = None,
    world: WorldConfig | None = None,
    families: Sequence[str] = ("read_one", "compare_two", "count", "control"),
) -> dict[str, float]:
    """Per family, the accuracy of a uniform guess among the answers its question allows (questions drawn as
    `make_task` draws them: each (kind, answer) pair equally often). read_one with five patterns: 0.2;
    compare_two ("yes" / "no"): 0.5; a control "side" question names two sides: 0.5."""
    tasks, world = tasks or TaskConfig(), world or WorldConfig()
    out = {}
    for fam in families:
        if fam == "read_one":  # a question of kind k has len(values of k) answers, and k is drawn in proportion
            pairs = [(k, len(answer_classes(world, k))) for k in tasks.read_kinds]
        elif fam == "compare_two":
            pairs = [("yes/no", 2)]
        elif fam == "count":
            pairs = [("count", tasks.count_max)]
        elif fam == "control":
            counts = {
                "side": (len(SIDES), 2),
                "colour": (len(world.object_colours),) * 2,
                "shape": (len(world.object_shapes),) * 2,
            }
            weighted = [counts[k] for k in tasks.control_kinds]
            total = sum(n for n, _ in weighted)
            out[fam] = sum(n / total / options for n, options in weighted)
            continue
        else:
            raise ValueError(
                f"chance_levels: no chance level for family {short(fam)}; known: read_one, compare_two, count, control"
            )
        total = sum(n for _, n in pairs)
        out[fam] = sum(n / total / n for _, n in pairs)
    return out


def chance_of(samples: Sequence, tasks: TaskConfig | None = None, world: WorldConfig | None = None) -> dict[str, float]:
    """Per family of `samples`, a uniform guess's accuracy: `chance_levels` for the world's families (samples the
    world generated), else 1 / the number of distinct canonical answers among the family's samples."""
    seen: dict[str, set] = {}
    generated: dict[str, bool] = {}
    for s in samples:
        fam = getattr(s, "family", "") or "?"
        generated[fam] = (
            generated.get(fam, True) and (getattr(s, "provenance", None) or {}).get("generator") == "r3lab.world"
        )
        if getattr(s, "answers", None):
            seen.setdefault(fam, set()).add(normalize_answer(s.answers[0]))
    known = [f for f in generated if f in WORLD and generated[f]]
    out = chance_levels(tasks, world, known) if known else {}
    out.update({f: 1.0 / len(v) for f, v in seen.items() if f not in out})
    return out
