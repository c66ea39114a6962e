"""Task families over the synthetic world: questions, balanced answers and the landmarks to look at.

A `Task` is one question about a `Scene` of `r3lab.data.world`: its accepted answers, the landmarks whose
details answer it (in crop order) and what each crop shows. Families and their difficulty knobs live
in `TaskConfig`. Everything is a pure function of (seed, family, index).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from ..core.settings import check_bools, check_ranges, short
from .details import GLYPHS
from .layout import make_scene
from .world import Scene, WorldConfig, jsonable

ALTERNATIVES = {"grey": ["gray"], "cross": ["plus"], "diamond": ["rhombus"], "checked": ["checkered", "checks"]}
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAMILIES = ("read_one", "compare_two", "control")  # the default mix (what the shipped checkpoints learned)
# opt-in: dots to count (the count moves a coarse pixel's mean, so the coarse view gives it away) and a digit
# drawn in a 3x5 pixel font (glyphs are slow for a tiny model to learn); neither is trained by the recipe
HARD_FAMILIES = ("count", "glyph")
ALL_FAMILIES = FAMILIES + HARD_FAMILIES
CONTROL_KINDS = ("side", "colour", "shape")
SIDES = {"left": ("x", -1), "right": ("x", 1), "top": ("y", -1), "bottom": ("y", 1)}  # side answer -> (axis, sign)
DETAILS = {"pattern": "pattern", "colour": "mark", "shape": "shape"}  # what a read asks -> the detail drawn

QUESTIONS = {
    "read_one/pattern": [
        "What pattern is on the {obj}?",
        "Which pattern does the mark on the {obj} show?",
        "What is the pattern of the small mark on the {obj}?",
    ],
    "read_one/colour": [
        "What colour is the mark on the {obj}?",
        "Which colour is the small mark on the {obj}?",
        "What is the colour of the mark on the {obj}?",
    ],
    "read_one/shape": [
        "What shape is the mark on the {obj}?",
        "Which shape is drawn on the {obj}?",
        "What is the shape of the small mark on the {obj}?",
    ],
    "compare_two/pattern": [
        "Do the marks on the {a} and the {b} have the same pattern?",
        "Are the marks on the {a} and the {b} the same pattern?",
        "Is the pattern on the {a} the same as the pattern on the {b}?",
    ],
    "compare_two/colour": [
        "Do the marks on the {a} and the {b} have the same colour?",
        "Are the marks on the {a} and the {b} the same colour?",
        "Is the mark on the {a} the same colour as the mark on the {b}?",
    ],
    "count": [
        "How many dots are on the {obj}?",
        "How many small dots does the {obj} have?",
        "Count the dots on the {obj}.",
    ],
    "glyph": [
        "What digit is written on the {obj}?",
        "Which digit is on the {obj}?",
        "What number is drawn on the {obj}?",
    ],
    "control/colour": ["What colour is the {shape}?", "Which colour is the large {shape}?"],
    "control/shape": ["What shape is the {colour} object?", "Which shape is the large {colour} object?"],
    "control/side/x": ["Is the {obj} on the left or the right?", "Is the {obj} in the left or the right half?"],
    "control/side/y": ["Is the {obj} in the top or the bottom half?", "Is the {obj} near the top or the bottom?"],
}


@dataclass(frozen=True)
class TaskConfig:
    """Task families' difficulty knobs."""

    read_kinds: tuple = ("pattern",)
    """what read_one asks about the detail: "pattern" (a grating at equal mean grey: the zoom is necessary),
    "colour" (an 11-px colour mark: its tint survives the coarse view), "shape" (5-px shapes)"""
    compare_kind: str = "pattern"
    """what compare_two compares: "pattern" or "colour" """
    control_kinds: tuple = ("side",)
    """what control asks about a large landmark, all visible at the coarse view: "side" (which half of the image
    it is in: left / right / top / bottom), "colour" (named by its shape), "shape" (named by its colour); colour
    and shape need a binding the grounding stage does not teach and stay near chance (research/FINDINGS.md)"""
    side_margin: float = 0.1
    """side questions: the landmark's centre is at least this share of the side off the middle"""
    count_max: int = 4
    """count answers are 1..count_max (at most 9)"""
    distractor_details: bool = True
    """other landmarks carry details of the same kind (else plain)"""

    def __post_init__(self):
        for f in ("read_kinds", "control_kinds"):
            v = getattr(self, f)
            object.__setattr__(self, f, (v,) if isinstance(v, str) else tuple(v))
        check_ranges(self, ints=dict(count_max=(1, 9)), floats=dict(side_margin=(0.0, 0.3)), open_high=("side_margin",))
        check_bools(self, "distractor_details")
        if not all(isinstance(k, str) for k in (*self.read_kinds, *self.control_kinds, self.compare_kind)):
            raise ValueError(
                f"TaskConfig's kinds are names: read_kinds {short(self.read_kinds)}, control_kinds "
                f"{short(self.control_kinds)}, compare_kind {short(self.compare_kind)}"
            )
        if not self.read_kinds or any(k not in DETAILS for k in self.read_kinds):
            raise ValueError(f"read_kinds {list(self.read_kinds)}: choose one or more of {list(DETAILS)}")
        if self.compare_kind not in ("pattern", "colour"):
            raise ValueError(f"compare_kind must be 'pattern' or 'colour', got {short(self.compare_kind)}")
        if not self.control_kinds or any(k not in CONTROL_KINDS for k in self.control_kinds):
            raise ValueError(f"control_kinds {list(self.control_kinds)}: choose one or more of {list(CONTROL_KINDS)}")

    def to_dict(self) -> dict:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass
class Task:
    """One generated question: the scene, the question, its answers and which landmarks to look at."""

    scene: Scene
    question: str
    answers: list
    family: str
    kind: str  # pattern | colour | shape | count | compare | glyph
    targets: list  # landmark indices in crop order ([] for control: the answer is visible at the coarse view)
    asked: int  # the landmark the question names (first of the targets, or the control object)
    seen: list  # what each crop shows (e.g. ["red"]), for the reference rationale
    seed: str  # the rng seed string, for provenance

    @property
    def regions(self) -> list:
        return [self.scene.region(k) for k in self.targets]

    @property
    def details(self) -> list:
        return [self.scene.landmarks[k].detail.box for k in self.targets]


def answers_for(value: str) -> list[str]:
    """Canonical answer first, then accepted alternatives ("grey"/"gray", "3"/"three")."""
    if value.isdigit():
        return [value, NUMBERS[int(value)]]
    return [value, *ALTERNATIVES.get(value, [])]


def make_task(
    family: str, seed: int, index: int, world: WorldConfig | None = None, tasks: TaskConfig | None = None
) -> Task:
    """Task `index` of `family` for dataset `seed`: deterministic, independent of every other index."""
    world, tasks = world or WorldConfig(), tasks or TaskConfig()
    if family not in _GENERATORS:
        raise ValueError(f"unknown task family {short(family)}; choose from {ALL_FAMILIES}")
    key = f"r3lab-world:{seed}:{family}:{index}"
    rng = random.Random(key)
    return _GENERATORS[family](rng, _balanced(seed, family, index), world, tasks, key)


def _balanced(seed: int, family: str, index: int):
    """Answer class for `index`: a fresh permutation of the classes per block, so answers are balanced."""

    def pick(classes):
        k = len(classes)
        perm = list(classes)
        random.Random(f"r3lab-balance:{seed}:{family}:{index // k}").shuffle(perm)
        return perm[index % k]

    return pick


# -- task families -----------------------------------------------------------------------------
def answer_classes(world: WorldConfig, kind: str) -> tuple:
    return {"pattern": world.patterns, "colour": world.mark_colours, "shape": world.detail_shapes}[kind]


def _read_one(rng, pick, world, tasks, key):
    kind, answer = pick([(k, v) for k in tasks.read_kinds for v in answer_classes(world, k)])
    scene = make_scene(rng, world, 1, [answer], DETAILS[kind], tasks.distractor_details)
    q = rng.choice(QUESTIONS[f"read_one/{kind}"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(answer), "read_one", kind, [0], 0, [answer], key)


def _compare_two(rng, pick, world, tasks, key):
    same = pick(["yes", "no"]) == "yes"
    values = answer_classes(world, tasks.compare_kind)
    a = rng.choice(values)
    b = a if same else rng.choice([c for c in values if c != a])
    scene = make_scene(rng, world, 2, [a, b], DETAILS[tasks.compare_kind], tasks.distractor_details)
    q = rng.choice(QUESTIONS[f"compare_two/{tasks.compare_kind}"]).format(
        a=scene.landmarks[0].name, b=scene.landmarks[1].name
    )
    return Task(scene, q, answers_for("yes" if same else "no"), "compare_two", "compare", [0, 1], 0, [a, b], key)


def _count(rng, pick, world, tasks, key):
    n = pick(list(range(1, tasks.count_max + 1)))
    scene = make_scene(rng, world, 1, [n], "dots", tasks.distractor_details, count_max=tasks.count_max)
    q = rng.choice(QUESTIONS["count"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(str(n)), "count", "count", [0], 0, [str(n)], key)


def _control(rng, pick, world, tasks, key):
    values = {"colour": world.object_colours, "shape": world.object_shapes, "side": tuple(SIDES)}
    kind, answer = pick([(k, v) for k in tasks.control_kinds for v in values[k]])
    if kind == "side":
        return _side(rng, answer, world, tasks, key)
    scene = make_scene(
        rng,
        world,
        1,
        [None],
        DETAILS[tasks.read_kinds[0]],
        True,
        big_first=True,
        first=("colour" if kind == "colour" else "shape", answer),
    )
    lm = scene.landmarks[0]
    if kind == "colour":
        q = rng.choice(QUESTIONS["control/colour"]).format(shape=lm.shape)
    else:
        q = rng.choice(QUESTIONS["control/shape"]).format(colour=lm.colour)
    return Task(scene, q, answers_for(answer), "control", kind, [], 0, [answer], key)


def _side(rng, answer, world, tasks, key):
    """A control question about where a landmark is: scenes are drawn until it sits clearly on that side."""
    axis, sign = SIDES[answer]
    for _ in range(200):
        scene = make_scene(rng, world, 1, [None], DETAILS[tasks.read_kinds[0]], True, big_first=True)
        lm = scene.landmarks[0]
        k = 0 if axis == "x" else 1
        centre, side = (lm.box[k] + lm.box[k + 2]) / 2, scene.size[k]
        if sign * (centre - side / 2) >= tasks.side_margin * side:
            break
    else:
        raise ValueError(
            f"no layout puts a landmark {tasks.side_margin:.0%} off the middle on the {answer}; "
            "lower TaskConfig.side_margin"
        )
    q = rng.choice(QUESTIONS[f"control/side/{axis}"]).format(obj=lm.name)
    return Task(scene, q, answers_for(answer), "control", "side", [], 0, [answer], key)


def _glyph(rng, pick, world, tasks, key):
    d = pick(sorted(GLYPHS))
    scene = make_scene(rng, world, 1, [d], "glyph", tasks.distractor_details)
    q = rng.choice(QUESTIONS["glyph"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(d), "glyph", "glyph", [0], 0, [d], key)


_GENERATORS = {
    "read_one": _read_one,
    "compare_two": _compare_two,
    "count": _count,
    "control": _control,
    "glyph": _glyph,
}
