"""The base stage's grounding check: where a policy's greedy boxes land for held-out "Where is the X?" questions.

Binding colour words to landmarks arrives as a late jump whose step varies from run to run (research/FINDINGS.md,
grounding and binding), and a base that did not bind makes every later stage crop the wrong landmark. So the
recipe measures after the grounding phase, adds grounding phases while the bar is not met, and stops with an
error naming the settings if it never is (`checks.py`). `r3lab probe where --policy PATH` measures a checkpoint
the same way.
Each question is rolled out by the engine (greedy, no crop executed) and its first crop call judged by the
crop-call grammar in the policy's own style.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..core.crop_calls import format_crop_call
from ..core.prompt import IM_END
from ..core.regions import Frame, box_iou
from ..core.settings import MAX_ROWS, SEED, WHY, check_ranges
from ..data.sample import Sample
from ..data.tasks import make_task
from ..data.world import WorldConfig, region_input_box
from ..engine.config import RolloutConfig
from ..engine.rollouts import rollout
from ..evaluation.evaluation import contains_detail
from ..train import dist


@dataclass
class WhereConfig:
    """Which held-out "Where is ...?" questions measure where a policy looks."""

    n: int = 250
    """questions (one scene each, one of its landmarks named)"""
    seed: int = 10_000
    """their scenes (a seed no training phase draws from)"""
    world: dict = field(default_factory=dict)
    """WorldConfig overrides (the recipe: its grounding phase's world)"""
    batch_rows: int = 64
    """questions decoded together"""

    def __post_init__(self):
        check_ranges(
            self,
            ints=dict(n=(1, 10**6), seed=SEED, batch_rows=(1, MAX_ROWS)),
            why=dict(n=WHY["questions"], seed=WHY["seed"], batch_rows=WHY["batch"]),
        )


def where_question(world: WorldConfig, seed: int, i: int, view) -> dict:
    """Scene i of `seed` with one landmark named at random: the Sample to roll out, the named landmark, its box."""
    sc = make_task("read_one", seed, i, world=world).scene
    k = random.Random(f"where:{seed}:{i}").randrange(len(sc.landmarks))
    frame = Frame.of(sc.size, view)
    # no answer is scored (the first box is judged); the landmark named stands in for it
    sample = Sample(
        sc,
        f"Where is the {sc.landmarks[k].name}?",
        [sc.landmarks[k].name],
        [sc.region(k)],
        family="where",
        sample_id=f"where-{seed}-{i}",
    )
    return dict(scene=sc, k=k, frame=frame, box=region_input_box(sc.region(k), frame), sample=sample)


def first_box(traj):
    """The box of the trajectory's first crop call that parsed into one (model-input frame), else None."""
    return next((e.call.box for e in traj.events if e.call.box is not None), None)


def where_metrics(items: list[dict], boxes: list) -> dict:
    """Mean IoU with the named landmark's region, % IoU > 0.5, % box centres on the named / any landmark, % crops
    holding its detail, % valid boxes; every percentage over all questions."""
    n = len(items)
    iou_sum = hit = on_named = on_any = contains = valid = 0
    for it, b in zip(items, boxes):
        if b is None or b[2] <= b[0] or b[3] <= b[1]:
            continue
        valid += 1
        fr, lms = it["frame"], it["scene"].landmarks
        iou = box_iou(b, it["box"])
        iou_sum += iou
        hit += iou > 0.5
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2

        def inside(lm, fr=fr, cx=cx, cy=cy):
            x1, y1, x2, y2 = fr.to_input(lm.box)
            return x1 <= cx <= x2 and y1 <= cy <= y2

        on_named += inside(lms[it["k"]])
        on_any += any(inside(lm) for lm in lms)
        contains += contains_detail(fr.to_orig(b), lms[it["k"]].detail.box)  # what the environment would cut
    pct = lambda v: round(100 * v / n, 1)  # noqa: E731
    return {
        "mean_iou": round(iou_sum / n, 4),
        "iou>0.5": pct(hit),
        "centre_on_named": pct(on_named),
        "centre_on_any": pct(on_any),
        "contains_detail": pct(contains),
        "valid": pct(valid),
    }


def chance(items: list[dict]) -> dict:
    """What guessing gives: the box of a random landmark of the scene."""
    rng = random.Random(0)
    iou = named = 0.0
    for it in items:
        sc, fr = it["scene"], it["frame"]
        j = rng.randrange(len(sc.landmarks))
        iou += box_iou(region_input_box(sc.region(j), fr), it["box"])
        named += j == it["k"]
    return {
        "random_landmark_iou": round(iou / len(items), 4),
        "random_landmark_centre": round(100 * named / len(items), 1),
    }


def evaluate_where(policy, config: WhereConfig | None = None, progress: bool | None = False) -> dict:
    """Where the policy's greedy boxes land on `config.n` held-out questions: `where_metrics` and `chance`. In a
    distributed run every rank calls it and rolls out its share of the batches (the same result on every rank)."""
    cfg = config or WhereConfig()
    world = WorldConfig(**cfg.world)
    items = [where_question(world, cfg.seed, i, policy.view) for i in range(cfg.n)]
    style = policy.prompt.calls
    budget = max(len(policy.encode(format_crop_call(it["box"], style, it["frame"]) + IM_END)) for it in items[:50]) + 8
    rcfg = RolloutConfig(
        group_size=1,
        greedy=True,
        max_crops=0,
        max_new_tokens=budget,
        max_segment_tokens=budget,
        batch_rows=cfg.batch_rows,
    )
    boxes = {}
    for part in dist.deal(len(items), cfg.batch_rows):  # rollout's own batches: the same boxes on any ranks
        trajs = rollout(policy, [items[i]["sample"] for i in part], rcfg, progress=progress)
        boxes.update(zip(part, map(first_box, trajs)))
    boxes = {i: b for mine in dist.gather_objects(boxes) for i, b in mine.items()}
    return {**where_metrics(items, [boxes[i] for i in range(len(items))]), **chance(items)}


def measure(policy, world: dict, n: int) -> dict:
    """The recipe's check: `evaluate_where` on `n` questions of `world` (its grounding phase's)."""
    return evaluate_where(policy, WhereConfig(n=n, world=world))


def take(policy, recipe, phase) -> dict:
    """The grounding phase's check (`checks.MEASURES["where"]`): `evaluate_where` on the check's held-out questions
    of the grounding phases' world."""
    c = phase.check
    return evaluate_where(policy, WhereConfig(n=c.n, seed=c.seed, world=dict(recipe.world, **recipe.base_world)))
