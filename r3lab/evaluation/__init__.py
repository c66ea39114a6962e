"""Held-out evaluation of a policy: rollouts scored per task family with intervals, tool necessity, chance levels,
crop behaviour over training, where crop boxes go wrong, the cost of an answer and one record per question."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".evaluation": ["EvalConfig", "EvalResult", "summarize", "evaluate", "bootstrap_ci"],
        ".audit_settings": ["AuditSettings"],
        ".progress": ["EvalEvery", "NecessityEvery"],
        ".chance": ["chance_levels", "chance_of"],
        ".cost": ["cost_rows"],
        ".questions": ["diff_runs", "load_questions"],
        ".ablations": ["answer_only", "oracle_boxes", "random_boxes"],
        ".necessity": ["necessity_rows", "necessity_table", "bench_necessity", "BenchNecessity"],
        ".behaviour": ["CollapseConfig", "crop_behaviour", "detect_collapse", "load_evals", "load_run"],
        ".box_report": ["box_errors", "crop_records", "format_box_errors"],
    },
)
