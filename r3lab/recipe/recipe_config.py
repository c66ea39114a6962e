"""`RecipeConfig`: every setting of the miniature replication (`recipe.py` runs it), and the config of every phase
it trains and evaluates, each built and checked when the recipe's settings are made, before any training.

The curriculum (the base and SFT stages' phases, R-GRPO's settings) is data (`curriculum.py`); why each phase is
there: the section of `research/FINDINGS.md` its `why` names.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace

from ..core.files import given_path
from ..core.prompt import TINY_INSTRUCTION, check_plain_text
from ..core.regions import ViewConfig
from ..core.settings import (
    POSITIVE,
    SEED,
    WHY,
    check_bools,
    check_ranges,
    check_text,
    from_dict,
    nested,
    read_nested,
    short,
)
from ..data.tasks import ALL_FAMILIES
from ..data.world import WorldConfig
from ..engine.config import RolloutSettings
from ..model.tiny import TinyConfig
from ..train.config import check_sampled
from ..train.rewards import RewardSpec
from . import curriculum
from .curriculum import Phase, RGRPOStage, Stage
from .keywords import resolve
from .paths import CHECK_FLAG, flag_of
from .phase_data import SOURCES
from .recipe_format import FORMAT_VERSION
from .stage_configs import ROWS, StageConfigs

RERUNNABLE = ("out", "rows", "ship", "parallel", "report_to")  # settings that change no saved stage or evaluation
STAGES = {"base": (), "sft": ("base",), "no_crop": ("base",), "rgrpo": ("sft",), "rgrpo_no_region": ("sft",)}
MODEL_OF = {
    "no_crop": "no_crop",
    "sft": "sft",
    "sft_rgrpo": "rgrpo",
    "rgrpo_no_region": "rgrpo_no_region",
    "oracle": "sft",
    "random": "sft",
}
# r3-tiny as the recipe trains it: a tiny Qwen3-VL (learned absolute position embedding, DeepStack), 7-px
# patches, a 256-wide language model (FINDINGS: patch size; grounding and binding)
R3_TINY = {"family": "qwen3_vl", "patch_size": 7, "hidden": 256, "intermediate": 512, "heads": 8, "kv_heads": 4}
CHECK_KNOBS = tuple(k for k in CHECK_FLAG if k != "n")  # what a check that is off (n = 0) cannot use
MAX_TRAIN, MAX_EVAL = 200_000, 100_000  # VLIR samples are built and held in memory (a few KB each)
MAX_INSTRUCTION = 2000  # characters of the prompt's instruction suffix: every prompt of every stage carries it


@dataclass
class RecipeConfig(StageConfigs):
    """The whole miniature replication: data, the curriculum of the four trained models, the evaluation.

    Built from its fields; `RecipeConfig.from_settings` also takes a phase's setting by its path
    (`**{"read.steps": 300}`, as the flag `--read-steps`), the one door the CLI, `--config` and stored files share.
    """

    out: str = "runs/recipe"
    """stage checkpoints, eval/<row>.json, results.json, table.md"""
    rows: str = ",".join(ROWS)
    """comma-separated rows to evaluate (the stages they need are trained)"""
    seed: int = 0
    """model initialisation, data order and rollout sampling"""
    data_seed: int = 1
    """training samples (each phase draws at its own offset from it)"""
    eval_seed: int = 999
    """held-out samples (a seed never used for training)"""
    families: str = "read_one,compare_two,control"
    """task families, training and evaluation"""
    tiny: dict = field(default_factory=lambda: dict(R3_TINY))
    """TinyConfig of the model trained from scratch"""
    view: dict = field(default_factory=dict)
    """ViewConfig overrides (crop_max_pixels: the zoomed crop's pixel budget)"""
    world: dict = field(default_factory=dict)
    """WorldConfig overrides, every stage and the evaluation (mark_size, ...)"""
    base_world: dict = field(default_factory=dict)
    """world overrides of the phases whose mix's world is "grounding" """
    question_first: bool = True
    """prompt layout: question, then image (the image tokens can attend to the name)"""
    instruction: str = TINY_INSTRUCTION
    """the prompt's instruction suffix (r3-tiny learns it is constant)"""
    # (the stages are looked up when a config is built: a test may change the default curriculum)
    base: Stage = field(default_factory=lambda: curriculum.base_stage())
    """the base stage's phases, from nothing"""
    sft: Stage = field(default_factory=lambda: curriculum.sft_stage())
    """the SFT stage's phases (the first, without crops: the no_crop row)"""
    n_train: int = 8000
    """VLIR training samples (the same for every row)"""
    n_eval: int = 1000
    """held-out samples per family"""
    rgrpo: RGRPOStage = nested(RGRPOStage, "rgrpo-")
    """both R-GRPO stages, from the SFT model"""
    # R-GRPO's rollouts (sampled: temperature > 0) and every row's evaluation (greedy; no_crop with no crops)
    train_rollout: RolloutSettings = nested(
        RolloutSettings, "train-", max_crops=2, max_new_tokens=128, max_segment_tokens=48, temperature=0.7
    )
    eval_rollout: RolloutSettings = nested(
        RolloutSettings, "eval-", max_crops=2, max_new_tokens=128, max_segment_tokens=64, temperature=0.0
    )
    # the sft_rgrpo row's reward (rgrpo_no_region: the same without the region reward); every row reports it
    reward: RewardSpec = nested(RewardSpec, "reward-", preset="code", region_weight=1.0, region="giou")
    autocast: bool = True
    """bfloat16 autocast in the base and SFT stages (weights stay fp32)"""
    parallel: int = field(default_factory=lambda: min(2, _cores()))
    """processes at once (one thread each; <= cores)"""
    ship: str = ""
    """copy the base, SFT and R-GRPO checkpoints and a model card here (e.g. assets/checkpoints)"""
    report_to: str = "none"
    """every training phase's curves: none, tensorboard, trackio, wandb, all (TrainConfig's)"""

    @classmethod
    def from_settings(cls, **settings) -> "RecipeConfig":
        """A recipe from keywords: its fields (a stage or R-GRPO given as a dict is read over the default), a setting
        by its path (`**{"read.steps": 300, "compare.check.bar": 90}`) and format 1's flat names (`read_steps=300`,
        `format_1.ALIASES`: read as that format ran them, with a FutureWarning naming today's path). A path and the
        format-1 name that sets it given together is an error, as is a check's setting given while the check is off."""
        values, touched = resolve(cls, settings)
        cfg = cls(**values)
        default = {p.name: p for p in curriculum.base_stage().phases + curriculum.sft_stage().phases}
        for path, value in touched:  # a check's setting given while the check is off would be silently ignored
            name, _, knob = path.rpartition(".")
            if not name.endswith(".check"):
                continue
            phase, was = cfg.phase(name.split(".")[0]), default.get(name.split(".")[0])
            unchanged = not value or was is not None and was.check is not None and getattr(was.check, knob) == value
            if phase is not None and knob in CHECK_KNOBS and not phase.checked and not unchanged:
                raise ValueError(
                    f"{path} ({flag_of(path)}) cannot take effect: phase {phase.name}'s check is off "
                    f"({phase.name}.check.n = 0); set its held-out questions "
                    f"({flag_of(phase.name + '.check.n')} N) or drop it"
                )
        return cfg

    def __post_init__(self):
        """Fail before an hour of training, not after it: every phase's config is built here."""
        read_nested(self)
        for name in ("base", "sft"):  # a dict is read over the default stage (its phases, when given, replace them)
            if isinstance(v := getattr(self, name), dict):
                default = asdict(getattr(curriculum, f"{name}_stage")())
                setattr(self, name, from_dict(Stage, {**default, **v}, f"RecipeConfig.{name}"))
            elif not isinstance(v, Stage):
                raise ValueError(
                    f"RecipeConfig.{name} = {short(v)} is not allowed: expected a Stage or a mapping of its settings"
                )
        self.validate()

    def validate(self) -> "RecipeConfig":
        """Check every setting and the phases (again after the curriculum's lists were changed in place)."""
        for name in ("rows", "families"):  # a YAML list of names is read as the comma-separated text
            v = getattr(self, name)
            if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
                setattr(self, name, ",".join(v))
            check_text(self, name, 1000, empty=False)
        self.families = ",".join(self.family_list)  # one spelling everywhere (tables, check sets)
        bad = [f for f in self.family_list if f not in ALL_FAMILIES]
        if bad or not self.family_list:
            raise ValueError(f"unknown task families {short(bad or self.families)}; choose from {list(ALL_FAMILIES)}")
        self.row_list  # noqa: B018  (validates rows)
        check_ranges(
            self,
            ints=dict(
                seed=SEED,
                data_seed=SEED,
                eval_seed=SEED,
                n_train=(1, MAX_TRAIN),
                n_eval=(1, MAX_EVAL),
                parallel=POSITIVE,
            ),
            why=dict(
                seed=WHY["seed"],
                data_seed=WHY["seed"],
                eval_seed=WHY["seed"],
                n_train="VLIR samples are built and held in memory",
                n_eval="held-out samples per family are built and held in memory",
            ),
        )
        _check_parallel(self.parallel)
        check_bools(self, "question_first", "autocast")
        check_text(self, "out", 4096, empty=False)
        given_path(self.out, "recipe's folder (--out)")
        check_text(self, "ship", 4096)
        check_text(self, "instruction", MAX_INSTRUCTION)
        check_plain_text(self.instruction, "RecipeConfig.instruction (--instruction)")
        for name in ("tiny", "view", "world", "base_world"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(
                    f"RecipeConfig.{name} = {short(getattr(self, name))} is not allowed: expected a "
                    "mapping of its settings"
                )
        names = [p.name for p in self.phases()]
        if dup := sorted({n for n in names if names.count(n) > 1} | {n for n in names if n in ("base", "rgrpo")}):
            raise ValueError(
                f"phase names are flags' prefixes and log folders: each once, none 'base' or 'rgrpo'; "
                f"got {dup} more than once or reserved"
            )
        if not self.sft.phases or self.sft.phases[0].mix.source != "vlir":
            raise ValueError(
                "the SFT stage's first phase must draw VLIR samples (mix.source 'vlir'): it is also what "
                "the no_crop row trains, without crops"
            )
        for stage, phase in self.stage_phases():
            self._check_sizes(stage, phase)
        r = self.rgrpo
        if r.batch % r.group_size or r.batch // r.group_size > self.n_train:
            raise ValueError(
                f"rgrpo.batch = {r.batch} (--rgrpo-batch) must be a multiple of rgrpo.group_size = "
                f"{r.group_size} (--rgrpo-group-size), and its prompts per step "
                f"({r.batch // r.group_size}) at most n_train = {self.n_train} (--n-train)"
            )
        if not any(r.mix.get(f, 1) > 0 for f in self.family_list):
            raise ValueError(f"rgrpo.mix gives every trained family weight 0: {short(r.mix)}")
        check_sampled(self.train_rollout, "RecipeConfig.train_rollout")
        self.tiny_config()  # unknown TinyConfig fields fail here
        self.view_config()
        self.world_config()
        self.world_config(base=True)
        self.stage_configs()
        return self

    def _check_sizes(self, stage: str, phase: Phase) -> None:
        """A step's batch against the samples its phase draws from (its source's rule), naming the recipe's flags."""
        if phase.steps or phase.checked and phase.check.rounds:
            SOURCES[phase.mix.source].check(self, stage, phase)

    # -- the curriculum -----------------------------------------------------------------------------------
    def stage_phases(self) -> list[tuple[str, Phase]]:
        """(stage, phase) for every phase of the base and SFT stages, in order."""
        return [(s, p) for s in ("base", "sft") for p in getattr(self, s).phases]

    def phases(self) -> list[Phase]:
        return [p for _, p in self.stage_phases()]

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases() if p.name == name), None)

    def no_crop_phase(self) -> Phase:
        """What the no_crop row trains from the base: the SFT stage's first phase, every family drawn, no crops."""
        first = self.sft.phases[0]
        return replace(first, name="no_crop", check=None, mix=replace(first.mix, without="", crops=False))

    @property
    def row_list(self) -> list[str]:
        rows = [r.strip() for r in self.rows.split(",") if r.strip()]
        bad = [r for r in rows if r not in ROWS]
        if bad or not rows:
            raise ValueError(f"unknown rows {bad or rows}; choose from {list(ROWS)}")
        return rows

    @property
    def family_list(self) -> list[str]:
        return [f.strip() for f in self.families.split(",") if f.strip()]

    @property
    def rgrpo_weights(self) -> dict[str, float]:
        """`rgrpo.mix` for the trained families only."""
        return {f: w for f, w in self.rgrpo.mix.items() if f in self.family_list}

    def view_config(self) -> ViewConfig:
        if "factor" in self.view:
            raise ValueError("view: factor is set by the model (patch_size * merge_size), not by the recipe")
        return from_dict(ViewConfig, self.view, "view")

    def world_config(self, base: bool = False) -> WorldConfig:
        """The world of every stage, or with `base` that of the grounding phases (`base_world` on top)."""
        if base:
            return from_dict(WorldConfig, {**self.world, **self.base_world}, "world + base_world")
        return from_dict(WorldConfig, self.world, "world")

    def tiny_config(self) -> TinyConfig:
        return from_dict(TinyConfig, self.tiny, "tiny")


def _cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_parallel(parallel: int) -> None:
    """`parallel` processes (DDP ranks of the base and SFT stages) at most one per core, or per GPU under CUDA."""
    import sys

    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        limit, what = sys.modules["torch"].cuda.device_count(), "GPUs (one rank per GPU)"
    else:
        limit = _cores()
        what = "CPU cores this process may use (one thread per process)"
    if parallel > limit:
        raise ValueError(
            f"RecipeConfig.parallel = {parallel} is not allowed: stages and evaluations run as that many "
            f"processes at once, and the base and SFT stages as that many DDP ranks, but this machine has "
            f"{limit} {what}: give --parallel {limit} or fewer"
        )


def saved_recipe(cfg: RecipeConfig) -> dict:
    """What out/recipe.json holds: every setting that changes a saved stage or evaluation, and its format."""
    return {"format_version": FORMAT_VERSION, **{k: v for k, v in asdict(cfg).items() if k not in RERUNNABLE}}
