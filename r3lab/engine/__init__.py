"""The engine that runs a model over trajectories: interleaved rollouts in the crop environment, with
the KV cache kept across crops, and teacher-forced scoring of chosen tokens."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".config": ["RolloutConfig"],
        ".environment": ["Episode", "crop_script", "note_text"],
        ".cache": ["Feed", "SharedCache", "check_attention"],
        ".static_cache": ["StaticSharedCache"],
        ".pool": ["release_pool"],
        ".sampling": ["banned_ids", "brace_table", "choose"],
        ".rollouts": ["rollout"],
        ".scoring": ["TokenScorer", "token_logprobs"],
        ".costs": ["compare", "reprefill_curve"],
    },
)
