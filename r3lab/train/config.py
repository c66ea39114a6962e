"""The two training stages' configurations, checked when they are built (no torch: the CLI reads them).

`TrainConfig` holds what the shared loop reads from either (`r3lab.train.loop`: the optimiser, the schedule,
checkpoints); `SFTConfig` and `RGRPOConfig` add their own and set their own defaults. A number outside its range
is a ValueError naming the field, the value and the range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.settings import MAX_ROWS, RATE, SEED, STEPS, WHY, check_choice, check_ranges, nested, read_nested, short
from ..engine.config import RolloutSettings
from ..model.adapters import LoRAConfig
from .rewards import RewardSpec
from .trackers import parse_report_to


def parse_resume(s: str) -> bool | str:
    """CLI values of `resume`: true / false / auto."""
    import argparse

    v = s.strip().lower()
    if v == "auto":
        return "auto"
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true, false or auto, got {short(s)}")


def resume_field():
    """The `resume` field of the training configs: False, True or "auto" (its CLI flag takes all three)."""
    return field(default=False, metadata={"type": parse_resume, "metavar": "{true,false,auto}"})


def check_lora(cfg) -> None:
    """`lora` (read into a LoRAConfig by `read_nested`), checked."""
    if not isinstance(cfg.lora, LoRAConfig):
        raise ValueError(f"{type(cfg).__name__}.lora = {short(cfg.lora)}: expected a LoRAConfig")
    cfg.lora.validate()


def check_out_dir_mode(cfg) -> None:
    """resume / overwrite / out_dir must agree (checked when the config is built)."""
    if cfg.resume not in (False, True, "auto"):
        raise ValueError(
            f"{type(cfg).__name__}.resume = {short(cfg.resume)} is not allowed: expected False, True or 'auto'"
        )
    if cfg.overwrite and cfg.resume:
        raise ValueError(
            f"{type(cfg).__name__}: overwrite=True deletes the run that resume={short(cfg.resume)} would "
            "continue; set only one of them"
        )
    if cfg.resume is True and not cfg.out_dir:
        raise ValueError(f"{type(cfg).__name__}: resume=True needs out_dir (the folder of the run to continue)")


@dataclass
class TrainConfig:
    """What both training stages share: data, length, learning rates, what is trained, optimiser and schedule, and
    where the run is kept. Defaults fit r3-tiny on a 2-core CPU; each stage sets its own where they differ."""

    data: str = ""
    """dataset folder or samples.jsonl (CLI); notebooks pass samples directly"""
    steps: int = 200
    """optimizer steps"""
    batch_size: int = 8
    """samples per optimizer step, over all processes"""
    lr_lm: float = 1e-3
    """language model (+ tied embeddings/lm_head) learning rate"""
    lr_merger: float = 1e-3
    """vision-to-text merger (projector) learning rate"""
    lr_vision: float = 1e-3
    """vision tower learning rate"""
    freeze_vision: bool = False
    """paper/code: True (LLM only)"""
    freeze_merger: bool = False
    """paper/code: True"""
    optimizer: str = "adamw"
    """"adamw" or "sgd" (plain gradient steps: exact to compare runs, slow to learn)"""
    weight_decay: float = 0.0
    """AdamW decay on matrices (never on norms/biases)"""
    schedule: str = "cosine"
    """"cosine" or "constant" after warm-up"""
    warmup: float = 0.03
    """warm-up: fraction of steps (< 1) or a number of steps (>= 1)"""
    min_lr_ratio: float = 0.1
    """cosine floor as a fraction of each group's lr"""
    grad_clip: float = 1.0
    """max global grad norm (0 = off)"""
    gradient_checkpointing: bool = False
    """recompute activations in backward (GPU, long sequences)"""
    lora: LoRAConfig = nested(LoRAConfig, "lora-")
    """LoRA adapters (peft) instead of full fine-tuning: --lora-r 16"""
    autocast: bool = False
    """bfloat16 autocast for forward and backward (CPUs with avx512_bf16, GPUs); weights fp32"""
    seed: int = 0
    """data order and initialisation of anything random"""
    log_every: int = 1
    """steps between log rows"""
    save_every: int = 0
    """steps between checkpoints (0 = only at the end / on Ctrl-C)"""
    out_dir: str = ""
    """checkpoints, log.jsonl; "" = keep everything in memory"""
    resume: bool | str = resume_field()
    """true: continue the run in out_dir (it must hold one); auto: continue if any"""
    overwrite: bool = False
    """delete the run already in out_dir (log, checkpoints) and start afresh"""
    report_to: str = "none"
    """where curves and settings go, as TRL's report_to: none, tensorboard, trackio (local), wandb (offline), all (those
    installed), or a comma-separated list (r3lab.train.trackers)"""

    def __post_init__(self):
        read_nested(self)  # lora given as a dict (a saved state.json, the CLI) becomes its LoRAConfig
        self.validate()

    def validate(self):
        """Every shared setting checked (each stage adds its own)."""
        check_ranges(
            self,
            ints=dict(steps=STEPS, batch_size=(1, 1 << 20), seed=SEED, log_every=(1, STEPS[1]), save_every=STEPS),
            floats=dict(
                lr_lm=RATE,
                lr_merger=RATE,
                lr_vision=RATE,
                weight_decay=(0.0, 1.0),
                warmup=(0.0, float(STEPS[1])),
                min_lr_ratio=(0.0, 1.0),
                grad_clip=(0.0, 1e6),
            ),
            why=dict(steps=WHY["steps"], seed=WHY["seed"]),
        )  # rows per process: check_batch, MAX_ROWS
        check_out_dir_mode(self)
        parse_report_to(self.report_to)
        check_lora(self)
        check_choice(self, "optimizer", ("adamw", "sgd"))
        check_choice(self, "schedule", ("cosine", "constant"))
        return self


@dataclass
class SFTConfig(TrainConfig):
    """SFT on reference rationales. Defaults fit r3-tiny on a 2-core CPU (the paper: lr 2e-7, LLM only)."""

    grad_accum: int = 1
    """micro-batches per step, each of rows of similar length (batch_size must divide evenly)"""
    # a run of fewer steps stops part-way along that curve; resumed to schedule_steps, it is the run of that many
    schedule_steps: int = 0
    """steps the warm-up and cosine are laid over (0: steps)"""

    def validate(self) -> "SFTConfig":
        super().validate()
        check_ranges(
            self,
            ints=dict(grad_accum=(1, MAX_ROWS), schedule_steps=STEPS),
            why=dict(grad_accum=WHY["batch"], schedule_steps=WHY["steps"]),
        )
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of grad_accum {self.grad_accum}"
            )
        if self.schedule_steps and self.schedule_steps < self.steps:
            raise ValueError(
                f"schedule_steps {self.schedule_steps} is shorter than steps {self.steps}: the schedule "
                "would end before the run; set schedule_steps >= steps, or 0 to lay it over steps"
            )
        return self


def check_sampled(rollout, where: str) -> None:
    """R-GRPO's rollouts must be sampled: at temperature 0 every rollout of a group is the same greedy one, so
    every advantage is zero and nothing is learned."""
    if not rollout.temperature > 0:
        raise ValueError(
            f"{where}.temperature = {short(rollout.temperature)} is not allowed: R-GRPO samples "
            f"its rollouts, "
            "expected a number > 0 (at 0 every rollout of a group is the same greedy one: every "
            "advantage is zero and nothing is learned)"
        )


@dataclass
class RGRPOConfig(TrainConfig):
    """R-GRPO. Defaults fit r3-tiny on a 2-core CPU (released code: G 5, lr 1e-6, beta 0, LLM only)."""

    steps: int = 20
    """rollout steps"""
    batch_size: int = 8
    """trajectories per step over all processes (a multiple of group_size)"""
    lr_lm: float = 1e-4
    """language model learning rate"""
    lr_merger: float = 1e-4
    """merger learning rate"""
    lr_vision: float = 1e-4
    """vision tower learning rate"""
    freeze_vision: bool = True
    """paper/code: only the LLM is trained in RL"""
    freeze_merger: bool = True
    """paper/code: True"""
    schedule: str = "constant"
    """"constant" (released) or "cosine" after warm-up"""
    warmup: float = 0.0
    """warm-up fraction (< 1) or steps (>= 1)"""
    autocast: bool = False
    """bfloat16 autocast in the update (weights stay fp32; the rollout's old log-probs stay fp32)"""
    seed: int = 0
    """prompt order and rollout sampling (a pure function of seed and step)"""
    group_size: int = 4
    """G rollouts per prompt; advantages are relative within each group (>= 2)"""
    micro_rows: int = 8
    """trajectories per forward/backward on one process, of similar length (memory only)"""
    inner_epochs: int = 1
    """optimizer updates per rollout batch; > 1 reuses rollouts (ratio != 1)"""
    eps_low: float = 0.2
    """ratio clipped below at 1 - eps_low"""
    eps_high: float = 0.28
    """ratio clipped above at 1 + eps_high ("clip-higher")"""
    beta: float = 0.0
    """KL (k3) weight to the frozen initial policy; 0 = no reference model at all"""
    loss_agg: str = "token"
    """"token": mean over all model tokens of the batch; "sequence": mean of per-row means"""
    scale_rewards: bool = True
    """divide by the group std (False: mean-centred only)"""
    adv_eps: float = 1e-4
    """(r - mean) / (std + adv_eps)"""
    reward: RewardSpec = nested(RewardSpec, "reward-")
    """the reward: preset, region reward and its weight"""
    rollout: RolloutSettings = nested(RolloutSettings)
    """crops, token budgets, temperature (log-probs at it), top-p"""
    rollout_mode: str = "batched"
    """"batched" (KV reuse) | "reference" (official one-at-a-time loop)"""
    recompute_old_logprobs: bool = False
    """True: old log-probs from a teacher-forced forward, not the rollout"""
    ref_policy: str = ""
    """beta > 0: reference checkpoint folder (default: a frozen copy of the start policy)"""

    def validate(self) -> "RGRPOConfig":
        if isinstance(self.group_size, int) and self.group_size < 2:
            raise ValueError(
                f"group_size must be >= 2 (got {self.group_size}): advantages are relative within a "
                "group of rollouts of the same prompt, so one rollout per prompt never gets a signal"
            )
        super().validate()
        check_ranges(
            self,
            ints=dict(group_size=(2, MAX_ROWS), micro_rows=(1, MAX_ROWS), inner_epochs=(1, 100)),
            floats=dict(eps_low=(0.0, 1.0), eps_high=(0.0, 1e3), beta=(0.0, 1e3), adv_eps=(0.0, 1.0)),
            open_high=("eps_low",),
        )
        check_sampled(self.rollout, "RGRPOConfig.rollout")
        if self.batch_size < self.group_size or self.batch_size % self.group_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of group_size "
                f"{self.group_size} (trajectories per step = prompts per step x group_size)"
            )
        check_choice(self, "loss_agg", ("token", "sequence"))
        check_choice(self, "rollout_mode", ("batched", "reference"))
        return self

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size // self.group_size

    @property
    def score_temperature(self) -> float:
        return self.rollout.temperature or 1.0  # greedy rollouts record T = 1
