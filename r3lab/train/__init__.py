"""Training: SFT and R-GRPO over one loop (state, optimiser, schedule, checkpoints, Ctrl-C), rewards with
TRL's signature, the metrics they log, and torch.distributed helpers (`r3lab.train.dist`)."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".config": ["TrainConfig", "SFTConfig", "RGRPOConfig"],
        ".optim": ["make_optimizer", "lr_factor", "clip_and_step"],
        ".plan": ["PlanConfig", "model_shape"],
        ".loop": ["TrainState", "prepare", "run_loop", "defer_interrupt", "batch_order"],
        ".sft": ["sft_step", "train_sft = train", "supervised_text"],
        ".rgrpo": [
            "RGRPOState",
            "group_advantages",
            "policy_loss",
            "scripted_rollout",
            "train_step",
            "setup_rgrpo = setup",
            "train_rgrpo = train",
        ],
        ".rewards": [
            "normalize_answer",
            "accuracy",
            "region_iou",
            "region_giou",
            "RewardTerm",
            "RewardSpec",
            "preset",
            "Scores",
            "score",
        ],
        ".metrics": ["MetricLog", "rollout_values", "rollout_metrics"],
        ".checkpoint": ["save_checkpoint", "load_checkpoint", "find_checkpoint"],
    },
)
