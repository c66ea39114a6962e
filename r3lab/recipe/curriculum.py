"""The recipe's curriculum as data: stages of phases, each phase a mix of samples trained for some steps at some
learning rate, and optionally a check measured after it that adds phases while it is below its bar.

`Recipe` (recipe.py) runs any such list with one loop; the flags of `r3lab recipe`, the card's check sections and
the README's curriculum table (`curriculum_table`) are all drawn from it. Why each default phase is there:
the research note its `why` names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.settings import (
    MAX_ROWS,
    RATE,
    SEED,
    SHARE,
    STEPS,
    WHY,
    check_bools,
    check_choice,
    check_ranges,
    check_text,
    short,
)
from ..data.grounding import CLOSEUP_STYLES
from ..data.tasks import ALL_FAMILIES
from .checks import MEASURES
from .phase_data import SOURCES

FROZEN = ("vision", "merger")  # what a phase may leave untrained (`Phase.frozen`)
MAX_SAMPLES = 10**6  # samples one phase draws: each is built and held in memory (a few KB)
MAX_CHECK = 100_000  # held-out questions of one check: each is a greedy rollout
MAX_ROUNDS = 100  # added phases of one check
MAX_PHASES = 64  # phases of one stage
MAX_GROUP = 256  # rollouts per prompt
WHY_SAMPLES = "samples are built and held in memory"
WORLDS = ("recipe", "grounding")
FINDINGS = "research/FINDINGS.md"


@dataclass
class Mix:
    """What a phase's samples are: where they come from (`phase_data.SOURCES`) and in what shares (each field names
    the sources it applies to; the others ignore it)."""

    source: str = "base"
    """"base": grounding, close-ups, comparisons; "drill": comparisons as text; "vlir": VLIR"""
    world: str = "recipe"
    """base, drill: "recipe" (the recipe's world) or "grounding" (base_world on top)"""
    samples: int = 0
    """base, drill: samples drawn (0: steps x batch); a VLIR phase draws the recipe's n_train"""
    closeups: float = 0.0
    """base: share of close-ups among the samples that are neither controls nor comparisons"""
    style: str = "answer"
    """base: close-ups answered with the detail ("answer") or with their rationale ("rationale")"""
    marks: bool = False
    """base: close-ups of colour marks (a detail the coarse view shows), not of the world's detail"""
    pairs: float = 0.0
    """base, drill: share of grounding questions naming two landmarks"""
    comparisons: float = 0.0
    """base: share of comparisons (both reads given)"""
    crops: bool = True
    """base: comparisons with both crops in place; vlir: rationales with their crops (else answers)"""
    controls: float = 0.0
    """base: share of control questions (their VLIR rationale), when control is trained"""
    reads: bool = True
    """drill: the model writes the reads too (else they are given)"""
    grounding: float = 0.0
    """drill: share of grounding questions, with their image"""
    weights: dict = field(default_factory=dict)
    """vlir: family -> weight (1 for a family it does not name)"""
    without: str = ""
    """vlir: comma-separated families the phase draws none of"""

    def __post_init__(self):
        check_choice(self, "source", tuple(SOURCES))
        check_choice(self, "world", WORLDS)
        check_choice(self, "style", CLOSEUP_STYLES)
        check_ranges(
            self,
            ints=dict(samples=(0, MAX_SAMPLES)),
            floats=dict(closeups=SHARE, pairs=SHARE, comparisons=SHARE, controls=SHARE, grounding=SHARE),
            why=dict(samples=WHY_SAMPLES),
        )
        check_bools(self, "marks", "crops", "reads")
        check_weights(self.weights, "Mix.weights")
        check_text(self, "without", 1000)
        if bad := [f for f in self.held if f not in ALL_FAMILIES]:
            raise ValueError(f"Mix.without names unknown task families {short(bad)}; choose from {list(ALL_FAMILIES)}")

    @property
    def held(self) -> list[str]:
        return [f.strip() for f in self.without.split(",") if f.strip()]

    def family_weights(self, families: list[str]) -> dict[str, float]:
        """A VLIR phase's weights over the trained `families` (the families held back at 0)."""
        return {
            **{f: w for f, w in self.weights.items() if f in families},
            **{f: 0 for f in self.held if f in families},
        }

    def describe(self) -> str:
        """The samples in a few words (the curriculum table's data column): its source's words."""
        return SOURCES[self.source].describe(self)


@dataclass
class Check:
    """A measurement on held-out questions after a phase, and the phases it adds while below its bar."""

    measure: str
    """what is measured: a name of checks.MEASURES (where, read, text_verdict, verdict, sft, sft_read)"""
    n: int = 200
    """held-out questions (0: no check)"""
    bar: float = 0.0
    """% the measure must reach"""
    more: int = 0
    """steps of each phase added while below the bar (a fresh warm-up, cosine and samples)"""
    rounds: int = 0
    """at most this many added phases; still below the bar: CheckError, naming the fix"""
    seed: int = 10_000
    """the held-out questions' seed (one no training phase draws from)"""
    more_seed: int = 20
    """added phase k draws its samples at data seed offset more_seed + k (VLIR: its order)"""
    early: float = 0.0
    """share of the phase's steps at which it is also measured, ending the phase if it passes"""
    ground_bar: float = 0.0
    """% of box centres on the named landmark, measured alongside (0: not measured)"""
    since: str = ""
    """the phase from which the record counts steps (default: this one)"""
    only: str = ""
    """a part of the measure taken alone while below the bar, the whole once it passes (sft: a family)"""

    def __post_init__(self):
        check_choice(self, "measure", tuple(MEASURES))
        check_text(self, "since", 100)
        check_text(self, "only", 100)
        if self.only and self.only not in MEASURES[self.measure].parts:
            raise ValueError(
                f"Check.only = {short(self.only)}: the {self.measure!r} measure takes alone one of "
                f"{list(MEASURES[self.measure].parts) or 'nothing'}"
            )
        check_ranges(
            self,
            ints=dict(n=(0, MAX_CHECK), more=STEPS, rounds=(0, MAX_ROUNDS), seed=SEED, more_seed=SEED),
            floats=dict(bar=(0.0, 100.0), ground_bar=(0.0, 100.0), early=SHARE),
            open_high=("early",),
            why=dict(n="each is a greedy rollout", more=WHY["steps"], seed=WHY["seed"], more_seed=WHY["seed"]),
        )


@dataclass
class Phase:
    """Steps of training on one mix of samples, a fresh warm-up and cosine, then its check if it has one."""

    name: str
    """its flags' prefix (--NAME-steps), its log folder (logs/STAGE_NAME) and its check's file"""
    steps: int = 0
    """optimizer steps (0: none; a check then measures the model the phases before it left)"""
    lr: float = 1e-3
    """peak learning rate"""
    mix: Mix = field(default_factory=Mix)
    """its samples"""
    seed: int = 0
    """its samples' data seed offset (a VLIR phase: its training order's seed offset)"""
    check: Check | None = None
    """measured after the phase; phases added while below its bar"""
    why: str = ""
    """the section of research/FINDINGS.md that says why the phase is there"""
    frozen: str = ""
    """comma-separated parts of the model the phase leaves untrained: vision, merger"""

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.name):
            raise ValueError(
                f"a phase's name is its flags' prefix and its log folder's suffix: lower-case letters, "
                f"digits and _, starting with a letter, at most 64; got {short(self.name)}"
            )
        self.mix = _read(Mix, self.mix, f"{self.name}.mix")
        if self.check is not None:
            self.check = _read(Check, self.check, f"{self.name}.check")
        check_ranges(
            self,
            ints=dict(steps=STEPS, seed=SEED),
            floats=dict(lr=RATE),
            why=dict(steps=WHY["steps"], seed=WHY["seed"]),
        )
        check_text(self, "why", 1000)
        check_text(self, "frozen", 100)
        if bad := [f for f in self.frozen_parts if f not in FROZEN]:
            raise ValueError(f"{self.name}.frozen names {short(bad)}: a phase may leave untrained {list(FROZEN)}")
        c = self.check
        if c is not None and c.n and c.rounds and c.more < 1:
            raise ValueError(
                f"{self.name}.check.rounds = {c.rounds} adds phases of {self.name}.check.more steps "
                f"(--{_flag(self.name)}-more); it must be >= 1, got {c.more}"
            )

    @property
    def frozen_parts(self) -> list[str]:
        return [f.strip() for f in self.frozen.split(",") if f.strip()]

    @property
    def checked(self) -> bool:
        return self.check is not None and self.check.n > 0

    def early_steps(self) -> int:
        """The step inside the phase at which its check is also taken (0: none)."""
        steps = int(self.check.early * self.steps) if self.checked else 0
        return steps if 0 < steps < self.steps else 0


@dataclass
class Stage:
    """A stage of the recipe trained by one loop: its phases in order, at one batch size."""

    batch: int = 32
    """samples per optimizer step, every phase of the stage"""
    phases: list = field(default_factory=list)
    """Phase objects (or dicts of their fields), in order"""

    def __post_init__(self):
        check_ranges(self, ints=dict(batch=(1, MAX_ROWS)), why=dict(batch=WHY["batch"]))
        if not isinstance(self.phases, list) or len(self.phases) > MAX_PHASES:
            raise ValueError(f"a stage's phases are a list of at most {MAX_PHASES} phases, got {short(self.phases)}")
        self.phases = [
            _read(Phase, p, str(p.get("name", "a phase"))[:64]) if isinstance(p, dict) else p for p in self.phases
        ]
        if bad := [p for p in self.phases if not isinstance(p, Phase)]:
            raise ValueError(f"a stage's phases must be Phase objects or dicts of their fields, got {short(bad)}")

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


def _read(cls, values, where: str):
    from ..core.settings import from_dict

    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a {cls.__name__} or a dict of its fields, got {short(values)}")
    return from_dict(cls, values, where)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def anchor(section: str) -> str:
    """A research note's section as a link target: research/FINDINGS.md#its-heading (GitHub's anchors)."""
    return f"{FINDINGS}#" + re.sub(r"[^\w\- ]", "", section.lower()).replace(" ", "-")


def base_stage() -> Stage:
    """The base stage: r3-tiny from nothing to grounding, reading the detail from a crop, and the verdict."""
    grounding = "Grounding and binding"
    return Stage(
        batch=32,
        phases=[  # 16 a step do not bind names to objects in 2,000 steps
            Phase(
                "ground",
                2000,
                1e-3,
                Mix(world="grounding", samples=64000),
                why=grounding,
                check=Check("where", n=200, bar=80.0, more=500, rounds=4, seed=10_000, more_seed=20),
            ),
            Phase("pairs", 500, 1e-3, Mix(world="grounding", pairs=0.5), seed=3, why=grounding),
            Phase("read_first", 400, 1e-3, Mix(closeups=0.75, marks=True, pairs=0.25), seed=4, why="Reading"),
            Phase("read_focus", 400, 1e-3, Mix(closeups=1.0, controls=0.15), seed=6, why="Reading"),
            Phase(
                "read",
                200,
                1e-3,
                Mix(closeups=0.75, pairs=0.25, controls=0.15),
                seed=1,
                why="Reading",
                check=Check("read", n=200, bar=60.0, more=200, rounds=6, seed=20_000, more_seed=40, since="read_focus"),
            ),
            Phase(
                "drill",
                1000,
                5e-4,
                Mix(source="drill", pairs=0.5),
                seed=5,
                why="Comparison",
                frozen="vision,merger",
                check=Check("text_verdict", n=200, bar=80.0, more=500, rounds=6, seed=40_000, more_seed=80),
            ),
            Phase(
                "compare",
                300,
                1e-3,
                Mix(closeups=0.75, pairs=0.25, comparisons=0.5, style="rationale", controls=0.15),
                seed=2,
                why="Comparison",
                check=Check("verdict", n=200, bar=85.0, more=300, rounds=4, seed=30_000, more_seed=60, ground_bar=95.0),
            ),
        ],
    )


def sft_stage() -> Stage:
    """The SFT stage: VLIR SFT from the base, compare_two first, read_one last (where R-GRPO has room)."""
    mix, why = {"compare_two": 12}, "The SFT stage: compare_two first, read_one last"
    return Stage(
        batch=32,
        phases=[
            Phase(
                "sft",
                300,
                5e-4,
                Mix(source="vlir", weights=dict(mix), without="read_one"),
                why=why,
                check=Check("sft", n=300, bar=88.0, more=100, rounds=5, seed=40_000, more_seed=100),
            ),
            Phase(
                "sft_read",
                0,
                2e-4,
                Mix(source="vlir", weights=dict(mix)),
                why=why,
                check=Check(
                    "sft_read", n=300, bar=72.0, more=25, rounds=12, seed=40_000, more_seed=200, only="read_one"
                ),
            ),
        ],
    )


@dataclass
class RGRPOStage:
    """Both R-GRPO stages (with and without the region reward), from the SFT model."""

    steps: int = 200
    """rollout steps"""
    lr: float = 2e-5
    """learning rate of every trained group (larger ones wear the SFT down)"""
    batch: int = 32
    """trajectories per step"""
    group_size: int = 8
    """rollouts per prompt"""
    vision: bool = True
    """the vision tower and merger are trained too (the paper: the language model only)"""
    # control questions keep the region row from cropping everywhere; read_one is where the SFT leaves room, and
    # compare_two's own questions keep what R-GRPO would otherwise cost that family (FINDINGS: R-GRPO)
    mix: dict = field(default_factory=lambda: {"read_one": 4, "compare_two": 4})
    """family -> weight in its questions"""
    beta: float = 0.0
    """KL weight to the SFT model"""

    def __post_init__(self):
        check_ranges(
            self,
            ints=dict(steps=STEPS, batch=(1, MAX_ROWS), group_size=(2, MAX_GROUP)),
            floats=dict(lr=RATE, beta=(0.0, 1000.0)),
            why=dict(
                steps=WHY["steps"],
                batch=WHY["batch"],
                group_size="a group is rolled out as one batch",
                beta="a KL weight above 1000 leaves the reward nothing to move",
            ),
        )
        check_bools(self, "vision")
        check_weights(self.mix, "RGRPOStage.mix")


def check_weights(weights, where: str) -> None:
    """A family -> weight mapping: known task families, each a finite number >= 0 (NaN, inf and true are typos:
    drawing samples by them fails only when that stage starts, after the ones before it trained)."""
    bad = (
        weights
        if not isinstance(weights, dict)
        else {
            k: v
            for k, v in weights.items()
            if k not in ALL_FAMILIES or isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1e6
        }
    )  # (NaN compares false)
    if bad or not isinstance(weights, dict):
        raise ValueError(
            f"{where} maps task families {list(ALL_FAMILIES)} to finite weights in [0, 1e6]; got {short(bad)}"
        )
