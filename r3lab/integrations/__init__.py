"""Maintained engines around r3lab: TRL's GRPOTrainer with r3lab's crop environment, samples, rewards and
Trajectories (`pip install r3lab[trl]`); a policy and a Trajectory handed to nnsight (`pip install r3lab[nnsight]`).
Nothing here loads TRL or nnsight until a name that needs it is used."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".trl_env": [
            "CropEnvironment",
            "ToolCall",
            "to_trl_rows",
            "trl_dataset",
            "tool_processor",
            "tool_instruction",
            "TOOL_NAME",
        ],
        ".trl_rewards": [
            "trl_reward",
            "reward_funcs",
            "format_reward",
            "accuracy_reward",
            "region_iou_reward",
            "region_giou_reward",
            "crop_valid_reward",
        ],
        ".trl_runs": ["TrajectoryRecorder"],
        ".trl_script": ["ScriptedTurns", "Choice", "scripted"],
        ".trl_probe": ["ForwardProbe"],
        ".trl_train": ["TRLConfig", "TRLRun", "grpo_trainer", "train_trl"],
        ".trl_necessity": ["TRLNecessity", "trl_prompt"],
        ".nnsight_bridge": ["wrap", "trace_inputs", "positions"],
    },
)
