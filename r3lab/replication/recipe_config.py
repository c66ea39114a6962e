"""`RecipeConfig`: every setting of the miniature replication (`recipe.py` runs it), validated before any training."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..core.prompt import TINY_INSTRUCTION
from ..core.regions import ViewConfig
from ..data.grounding import CLOSEUP_STYLES
from ..data.tasks import ALL_FAMILIES
from ..data.world import WorldConfig
from ..model.tiny import TinyConfig
from ..train.rewards import preset

RERUNNABLE = ("out", "rows", "ship", "parallel")  # settings that change no saved stage or evaluation
ROWS = ("no_crop", "sft", "sft_rgrpo", "rgrpo_no_region", "oracle", "random")
# settings added since with a new default: what folders made before them hold
BEFORE = {"base_controls": 0.0, "compare_steps": 0, "compare_closeups": "answer", "ground_check": 0, "base_pairs": 0.25, "pairs_steps": 0,
          "sft_mix": {}, "rgrpo_temperature": 1.0, "rgrpo_vision": False}
# r3-tiny as the recipe trains it: a tiny Qwen3-VL (learned absolute position embedding, DeepStack), 7-px
# patches, a 256-wide language model (research notes: where it learns to look and where it does not)
R3_TINY = {"family": "qwen3_vl", "patch_size": 7, "hidden": 256, "intermediate": 512, "heads": 8, "kv_heads": 4}


def _overrides(cls, values: dict, name: str, skip=frozenset()):
    """`cls(**values)`, naming unknown fields (a typo must not silently train the default)."""
    if bad := sorted(set(values) - (known := {f.name for f in fields(cls)} - set(skip))):
        raise ValueError(f"unknown {cls.__name__} fields {bad} in {name}; known: {sorted(known)}")
    return cls(**values)


@dataclass
class RecipeConfig:
    """The whole miniature replication: data, the four trained models, the evaluation."""

    out: str = "runs/recipe"  # stage checkpoints, eval/<row>.json, results.json, table.md
    rows: str = ",".join(ROWS)  # comma-separated rows to evaluate (the stages they need are trained)
    seed: int = 0  # model initialisation, data order and rollout sampling
    data_seed: int = 1  # training samples
    eval_seed: int = 999  # held-out samples (a seed never used for training)
    families: str = "read_one,compare_two,control"  # task families, training and evaluation
    tiny: dict = field(default_factory=lambda: dict(R3_TINY))  # TinyConfig of the model trained from scratch
    view: dict = field(default_factory=dict)  # ViewConfig overrides (crop_max_pixels: the zoomed crop's pixel budget)
    world: dict = field(default_factory=dict)  # WorldConfig overrides, every stage and the evaluation (mark_size, ...)
    # `world` overrides for the grounding phase only (a colour-mark world needs {"mark_size": 5}: 11-px marks of
    # the landmarks' colours kept grounding from binding colour words to objects; grey pattern tiles do not)
    base_world: dict = field(default_factory=dict)
    question_first: bool = True  # prompt layout: question, then image (the image tokens can attend to the name)
    instruction: str = TINY_INSTRUCTION  # the prompt's instruction suffix (r3-tiny learns it is constant)
    n_base: int = 64000  # base-stage samples (grounding questions and close-ups; fresh ones every step)
    # binding a name to its object took ~32 one-landmark questions a step: close-ups and two-landmark questions
    # in the same batch do not count towards it (research notes, session 10); reading has its own phase below
    base_closeups: float = 0.0  # share of close-ups (read a crop the environment opened) in the grounding phase
    base_pairs: float = 0.0  # share of the grounding phase's questions naming two landmarks (also added phases)
    base_steps: int = 2000  # base optimizer steps
    base_batch: int = 32  # base samples per step (16 fail to bind names to objects in 2,000 steps: research notes)
    base_lr: float = 1e-3  # base peak learning rate
    # the grounding phase binds names late, after a number of steps that varied between machines (research notes)
    ground_check: int = 200  # held-out "Where is ...?" questions measured after it (0: no check)
    ground_min: float = 80.0  # % of box centres on the named landmark that counts as bound
    ground_more: int = 500  # grounding steps (fresh warm-up, cosine and samples) added while below the bar
    ground_rounds: int = 3  # at most this many added phases; still below the bar: GroundingError, naming the fix
    # after binding one name, two: compare_two's first crop went to either named landmark (research notes, session 11)
    pairs_steps: int = 500  # a base phase after the check: grounding questions in the grounding phase's world
    pairs_share: float = 0.5  # share of that phase's questions naming two landmarks ("Where are the A and the B?")
    read_steps: int = 600  # a further base phase, mostly close-ups, fresh warm-up and cosine (reading arrives late)
    read_closeups: float = 0.75  # share of close-ups in that phase (16 per step of 32 did not start reading)
    # control questions (no crop) in the read and comparison phases: SFT's share alone left them near chance
    base_controls: float = 0.15  # share of control questions (their VLIR rationale) in those two phases
    # comparing two read colours is a skill SFT's few compare_two samples did not teach (research notes)
    # after the pairs phase 600 steps teach the verdict (oracle crops 98.9 %); 1,500 bought SFT 7 points of compare_two
    # with its own crops for ~21 more minutes, 200 more SFT steps (~4.5) bought 3 back (research notes, session 13)
    compare_steps: int = 600  # a third base phase: comparisons (both reads given), the rest as the read phase
    compare_share: float = 0.5  # share of comparisons in that phase
    compare_crops: bool = True  # the comparisons with both crops in place (else the reads as text only)
    # with bare-colour close-ups, 1,500 steps of verdicts took the answer slot over: read_one's answers stopped
    # copying the colour its rationale read (research notes); "rationale" close-ups keep that copy rehearsed
    compare_closeups: str = "rationale"  # the comparison phase's close-ups write "answer" (the colour) or "rationale"
    n_train: int = 8000  # VLIR training samples (the same for every row)
    # compare_two (two crops a sample) is learned last: three quarters of the SFT samples make it pass 85 % while
    # read_one still leaves R-GRPO room (research notes, sessions 14, 18 and 19)
    sft_mix: dict = field(default_factory=lambda: {"compare_two": 6})  # family -> weight in the SFT samples
    # (a family it does not name: 1; one not trained: ignored; {}: equal shares)
    # without control questions the region row learned to crop everywhere (research notes, session 19)
    rgrpo_mix: dict = field(default_factory=dict)  # family -> weight in R-GRPO's questions (both R-GRPO rows)
    n_eval: int = 1000  # held-out samples per family
    sft_steps: int = 350  # SFT optimizer steps (both SFT models, from the base; 600 until session 19)
    sft_batch: int = 32  # SFT samples per step
    sft_lr: float = 5e-4  # SFT peak learning rate (all parameter groups)
    rgrpo_steps: int = 400  # R-GRPO rollout steps (both R-GRPO models; 100 until session 15, 200 until 19)
    group_size: int = 8  # R-GRPO rollouts per prompt
    rgrpo_batch: int = 32  # R-GRPO trajectories per step
    rgrpo_lr: float = 2e-5  # R-GRPO learning rate (every trained group; 5e-5 wore SFT down)
    rgrpo_temperature: float = 0.7  # R-GRPO rollout temperature (1.0 until session 15)
    rgrpo_vision: bool = True  # R-GRPO trains the vision tower and merger too (the paper: the language model only)
    iou_weight: float = 1.0  # weight of the region reward in the sft_rgrpo row
    region_reward: str = "giou"  # "giou" (dense: a near miss still scores) or "iou"
    rewards: str = "code"  # reward preset ("code", "paper", "accuracy")
    beta: float = 0.0  # KL weight to the SFT model during R-GRPO
    max_crops: int = 2  # crops honoured per answer (training rollouts and evaluation)
    max_new_tokens: int = 128  # model tokens per answer
    autocast: bool = True  # bfloat16 autocast in the base and SFT stages (weights stay fp32)
    parallel: int = 2  # stage and evaluation processes at once (one CPU thread each)
    ship: str = ""  # copy the base / SFT / R-GRPO checkpoints and a model card into this folder (e.g. assets/checkpoints)

    def __post_init__(self):
        """Fail before an hour of training, not after it."""
        self.families = ",".join(self.family_list)  # one spelling everywhere (tables, check sets)
        bad = [f for f in self.family_list if f not in ALL_FAMILIES]
        if bad or not self.family_list:
            raise ValueError(f"unknown task families {bad or self.families!r}; choose from {list(ALL_FAMILIES)}")
        self.row_list  # noqa: B018  (validates rows)
        preset(self.rewards)  # raises naming the known presets
        small = {k: getattr(self, k) for k in ("n_base", "n_train", "n_eval", "base_batch", "sft_batch", "rgrpo_batch",
                                               "parallel") if getattr(self, k) < 1}
        if bad := {k: v for k, v in (("base_closeups", self.base_closeups), ("base_pairs", self.base_pairs),
                                     ("pairs_share", self.pairs_share),
                                     ("read_closeups", self.read_closeups), ("compare_share", self.compare_share),
                                     ("base_controls", self.base_controls)) if not 0 <= v <= 1}:
            raise ValueError(f"{', '.join(bad)} is a share of the base samples, in [0, 1]; got {bad}")
        steps = (self.base_steps, self.pairs_steps, self.read_steps, self.compare_steps, self.sft_steps, self.rgrpo_steps,
                 self.ground_check, self.ground_more, self.ground_rounds)
        if small or min(steps) < 0:
            raise ValueError(f"sizes must be >= 1 and steps >= 0, got {small or steps}")
        if self.ground_rounds and self.ground_more < 1:
            raise ValueError(f"ground_rounds={self.ground_rounds} adds phases of ground_more steps; ground_more must be "
                             f">= 1, got {self.ground_more}")
        if not 0 <= self.ground_min <= 100:
            raise ValueError(f"ground_min is a percentage of box centres, in [0, 100]; got {self.ground_min}")
        if not self.rgrpo_temperature > 0:
            raise ValueError(f"rgrpo_temperature must be > 0 (R-GRPO samples its rollouts), got {self.rgrpo_temperature}")
        if self.region_reward not in ("iou", "giou"):
            raise ValueError(f"region_reward must be 'iou' or 'giou', got {self.region_reward!r}")
        if self.compare_closeups not in CLOSEUP_STYLES:
            raise ValueError(f"compare_closeups must be one of {CLOSEUP_STYLES}, got {self.compare_closeups!r}")
        for name, mix in (("sft_mix", self.sft_mix), ("rgrpo_mix", self.rgrpo_mix)):
            if not isinstance(mix, dict) or (bad := {k: v for k, v in mix.items() if k not in ALL_FAMILIES
                                                     or not isinstance(v, (int, float)) or v < 0}):
                raise ValueError(f"{name} maps task families {list(ALL_FAMILIES)} to weights >= 0; got "
                                 f"{mix if not isinstance(mix, dict) else bad}")
            if not any(mix.get(f, 1) > 0 for f in self.family_list):
                raise ValueError(f"{name} gives every family weight 0: {mix}")
        self.tiny_config()  # unknown TinyConfig fields fail here
        self.view_config()
        self.world_config()
        self.world_config(base=True)
        if self.group_size < 2 or self.rgrpo_batch % self.group_size:
            raise ValueError(f"group_size must be >= 2 and divide rgrpo_batch, got {self.group_size} and "
                             f"{self.rgrpo_batch}")

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
    def sft_weights(self) -> dict[str, float]:
        """`sft_mix` for the trained families only (a family the recipe does not train has no share to set)."""
        return {f: w for f, w in self.sft_mix.items() if f in self.family_list}

    @property
    def rgrpo_weights(self) -> dict[str, float]:
        """`rgrpo_mix` for the trained families only."""
        return {f: w for f, w in self.rgrpo_mix.items() if f in self.family_list}

    def view_config(self) -> ViewConfig:
        return _overrides(ViewConfig, self.view, "view", skip={"factor"})

    def world_config(self, base: bool = False) -> WorldConfig:
        """The world of every stage, or with `base` that of the base's grounding phase (`base_world` on top)."""
        if base:
            return _overrides(WorldConfig, {**self.world, **self.base_world}, "world + base_world")
        return _overrides(WorldConfig, self.world, "world")

    def tiny_config(self):
        names = {f.name for f in fields(TinyConfig)}
        if bad := sorted(set(self.tiny) - names):
            raise ValueError(f"unknown TinyConfig fields {bad} in tiny; known: {sorted(names)}")
        return TinyConfig(**self.tiny)


def stored_settings(stored: dict) -> dict:
    """A recipe.json or model card's settings as today's RecipeConfig reads them: every field, the ones added
    since that run at their BEFORE value (the value that reproduces it), not at today's default."""
    return {**asdict(RecipeConfig()), **BEFORE, **stored}
