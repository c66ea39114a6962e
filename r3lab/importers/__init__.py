"""Other systems' runs as r3lab Trajectories: the official VLM-R3 evaluation, DeepEyes' evaluation, verl agent
loops and TRL's logged completions, each read from its exact format, so every explainer and view reads them."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".builder": ["TraceBuilder"],
        ".traces": ["OFFICIAL_EVAL_VIEW", "DEEPEYES_VIEW", "import_vlmr3_eval", "import_deepeyes_eval"],
        ".agent_loop": ["import_agent_loop"],
        ".trl": ["trl_trajectory", "import_trl_completions", "tool_trajectory", "completion_text"],
    },
)
