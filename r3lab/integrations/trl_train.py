"""r3lab's samples, crop environment and rewards on TRL's GRPOTrainer: `TRLConfig`, `grpo_trainer`, `train_trl`.

The same samples and reward terms as `r3lab.train.rgrpo`, on a maintained engine: TRL generates with
transformers (or vLLM, `use_vllm`), calls `CropEnvironment.image_zoom_in_tool` for every tool call,
re-prefills the whole conversation for each turn, masks tool results with `tool_mask` and trains
on the model's tokens. `TrajectoryRecorder` turns every batch back into Trajectories.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import Sequence

import torch

from ..core.crop_calls import COORDS
from ..core.env import in_kernel, progress_disabled
from ..core.settings import MAX_ROWS, RATE, SEED, STEPS, check_choice, check_ranges, nested, read_nested
from ..engine.config import RolloutSettings
from ..train.rewards import RewardSpec
from .trl_env import CropEnvironment, require_trl, tool_processor, trl_dataset
from .trl_rewards import reward_funcs
from .trl_runs import TrajectoryRecorder
from .trl_script import ScriptedTurns, scripted


@dataclass
class TRLConfig:
    """One GRPOTrainer run on r3lab samples (defaults: a few CPU steps of a tiny model)."""

    data: str = ""
    """dataset folder or samples.jsonl (the command line; train_trl takes samples)"""
    out_dir: str = "runs/trl"
    """GRPOTrainer's output_dir (checkpoints are not saved unless save_steps > 0)"""
    steps: int = 4
    """optimizer steps (GRPOConfig.max_steps)"""
    prompts_per_step: int = 2
    """distinct samples per step and process; each is rolled out group_size times"""
    group_size: int = 4
    """G: rollouts per prompt (GRPOConfig.num_generations)"""
    learning_rate: float = 1e-4
    """AdamW learning rate"""
    # max_crops: tool turns and executed crops per rollout; max_new_tokens: TRL's max_completion_length (tool results'
    # tokens count too); TRL has no per-segment budget, so max_segment_tokens must be at least max_new_tokens
    rollout: RolloutSettings = nested(RolloutSettings, max_crops=3, max_new_tokens=512, max_segment_tokens=512)
    coords: str = "absolute"
    """how the model writes boxes: absolute (input pixels) | relative (0-1000, Qwen3-VL)"""
    reward: RewardSpec = nested(RewardSpec, "reward-")
    """r3lab's reward terms (TRL has no gate: gated terms multiply)"""
    beta: float = 0.0
    """KL to a reference model (0: no reference model is loaded)"""
    epsilon: float = 0.2
    """PPO clip range"""
    seed: int = 0
    """TRL's seed (sampling, data order)"""
    use_vllm: bool = False
    """generate with vLLM (GPU only; see the README's recipe)"""
    vllm_mode: str = "colocate"
    """colocate (vLLM inside the trainer's processes) | server (`trl vllm-serve`)"""
    vllm_memory: float = 0.3
    """colocate: the share of each GPU's memory vLLM may take (the rest trains)"""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (real checkpoints on a GPU)"""
    save_steps: int = 0
    """save a checkpoint every N steps (0: never)"""
    log_every: int = 1
    """GRPOConfig.logging_steps"""

    def __post_init__(self):
        read_nested(self)
        self.validate()

    def validate(self) -> "TRLConfig":
        check_ranges(
            self,
            ints=dict(
                steps=STEPS,
                prompts_per_step=(1, MAX_ROWS),
                group_size=(2, MAX_ROWS),
                seed=SEED,
                save_steps=STEPS,
                log_every=(1, STEPS[1]),
            ),
            floats=dict(learning_rate=RATE, beta=(0.0, 1e3), epsilon=(0.0, 1.0), vllm_memory=(0.0, 1.0)),
            open_low=("vllm_memory",),
        )
        r = self.rollout.validate()
        if not r.temperature > 0:
            raise ValueError(
                f"TRLConfig.rollout.temperature = {r.temperature!r} is not allowed: GRPO samples its "
                "rollouts, expected a number > 0"
            )
        if r.max_segment_tokens < r.max_new_tokens:
            raise ValueError(
                f"TRLConfig.rollout.max_segment_tokens = {r.max_segment_tokens} is below max_new_tokens = "
                f"{r.max_new_tokens}: TRL's tool loop has no per-segment budget, only the whole "
                "completion's; set max_segment_tokens to max_new_tokens"
            )
        if (r.cache, r.cuda_graphs) != (RolloutSettings.cache, "auto"):  # TRL generates with its own engine
            raise ValueError(
                f"TRLConfig.rollout.cache / cuda_graphs = {r.cache!r} / {r.cuda_graphs!r}: TRL generates "
                "its rollouts itself (transformers or vLLM), so r3lab's engine settings do not apply; "
                "leave them at their defaults"
            )
        self.reward.validate()
        check_choice(self, "coords", COORDS)
        check_choice(self, "vllm_mode", ("colocate", "server"))
        return self


@dataclass
class TRLRun:
    """What `train_trl` returns: the trainer (its `state.log_history` is TRL's log) and the recorded rollouts."""

    trainer: object
    recorder: TrajectoryRecorder
    log: list = field(default_factory=list)

    @property
    def trajectories(self):
        return self.recorder.trajectories


def grpo_trainer(
    policy,
    samples: Sequence,
    cfg: TRLConfig | None = None,
    record: str | None = None,
    callbacks: Sequence = (),
    **grpo_kw,
):
    """A GRPOTrainer over `samples` with r3lab's crop environment and rewards, and its `TrajectoryRecorder`;
    `grpo_kw` set any other GRPOConfig field (e.g. `gradient_accumulation_steps`, `vllm_gpu_memory_utilization`);
    `record`: a .jsonl path the recorder appends every batch's Trajectories to; `callbacks`: transformers
    TrainerCallbacks (e.g. `r3lab.integrations.TRLNecessity`)."""
    require_trl()
    from trl import GRPOConfig, GRPOTrainer

    # transformers 5.24 renamed gradient_checkpointing (a FutureWarning since); older 5.x knows only the old name
    checkpointing = next(
        n for n in ("activation_checkpointing", "gradient_checkpointing") if n in {f.name for f in fields(GRPOConfig)}
    )

    cfg = (cfg or TRLConfig()).validate()
    if len({s.sample_id for s in samples}) != len(samples):
        raise ValueError("train_trl: samples need distinct sample_id values (each rollout finds its image by it)")
    processor = tool_processor(policy)
    dataset = trl_dataset(samples, policy.view, policy.prompt.system, cfg.coords)
    funcs, weights = reward_funcs(cfg.reward)
    recorder = TrajectoryRecorder(processor, policy.view, cfg.coords, path=record)
    settings = dict(
        output_dir=cfg.out_dir,
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size,
        num_generations=cfg.group_size,
        learning_rate=cfg.learning_rate,
        temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p,
        max_completion_length=cfg.rollout.max_new_tokens,
        max_tool_calling_iterations=cfg.rollout.max_crops,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        seed=cfg.seed,
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_gpu_memory_utilization=cfg.vllm_memory,
        **{checkpointing: cfg.gradient_checkpointing},
        reward_weights=weights + [0.0],
        logging_steps=cfg.log_every,
        report_to=[],
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        use_cpu=policy.device.type == "cpu",
        bf16=policy.model.dtype == torch.bfloat16,
        disable_tqdm=progress_disabled(),
    )
    args = GRPOConfig(**{**settings, **grpo_kw})  # GRPOConfig's own fields, given by name, win
    policy.model.train()
    with warnings.catch_warnings():  # r3lab is written against environment_factory on purpose (trl pinned 1.16)
        warnings.filterwarnings("ignore", message=r"You are using 'environment_factory'", category=UserWarning)
        trainer = GRPOTrainer(
            model=policy.model,
            reward_funcs=funcs + [recorder],
            args=args,
            train_dataset=dataset,
            processing_class=processor,
            callbacks=list(callbacks) or None,
            environment_factory=CropEnvironment.factory(samples, policy.view, cfg.coords, cfg.rollout.max_crops),
        )
    if in_kernel() and progress_disabled():  # a saved notebook: no bar, and not every log dict printed instead
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer, recorder


def train_trl(
    policy,
    samples: Sequence,
    cfg: TRLConfig | None = None,
    script: ScriptedTurns | None = None,
    record: str | None = None,
    callbacks: Sequence = (),
    **grpo_kw,
) -> TRLRun:
    """Train `policy` in place with TRL's GRPOTrainer on `samples`; `script` forces the turns (lessons, tests)."""
    trainer, recorder = grpo_trainer(policy, samples, cfg, record, callbacks, **grpo_kw)
    if script is not None:
        with scripted(policy.model, script):
            trainer.train()
    else:
        trainer.train()
    policy.model.eval()
    return TRLRun(trainer, recorder, list(trainer.state.log_history))
