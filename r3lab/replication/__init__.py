"""The old home of `r3lab.evaluation`, `r3lab.recipe` and `r3lab.audit`: the names it exported still load from here,
each with a FutureWarning naming its new home (this face goes in r3lab 0.3)."""

import warnings

from .._lazy import lazy

ROOMS = {  # every name the old face exported, by its new room
    "evaluation": [
        "EvalConfig",
        "EvalResult",
        "summarize",
        "evaluate",
        "bootstrap_ci",
        "EvalEvery",
        "NecessityEvery",
        "chance_levels",
        "chance_of",
        "cost_rows",
        "diff_runs",
        "load_questions",
        "answer_only",
        "oracle_boxes",
        "random_boxes",
        "necessity_rows",
        "necessity_table",
        "bench_necessity",
        "BenchNecessity",
        "CollapseConfig",
        "crop_behaviour",
        "detect_collapse",
        "load_evals",
        "load_run",
        "box_errors",
        "crop_records",
        "format_box_errors",
    ],
    "audit": [
        "AuditSettings",
        "audit_rollouts",
        "audit_table",
        "majority",
        "AuditRun",
        "run_audit",
        "audit_log",
        "audit_with_policy",
        "BenchAudit",
        "bench_audit_rows",
        "audit_block",
        "write_audit_block",
    ],
    "recipe": [
        "table_notes",
        "RecipeConfig",
        "Phase",
        "Check",
        "Mix",
        "Stage",
        "RGRPOStage",
        "CheckError",
        "Recipe",
        "run_recipe",
        "LABELS",
        "markdown_table",
        "stage_times",
        "model_card",
        "curriculum_table",
        "SHIPPED",
        "ship",
        "load_card",
        "warm_start",
        "WhereConfig",
        "evaluate_where",
        "where_metrics",
    ],
}
_load, __dir__, __all__ = lazy(__name__, {f"..{room}": names for room, names in ROOMS.items()})
_ROOM = {name: room for room, names in ROOMS.items() for name in names}


def __getattr__(name: str):
    if name in _ROOM:
        warnings.warn(
            f"r3lab.replication.{name} is now r3lab.{_ROOM[name]}.{name} (`from r3lab.{_ROOM[name]} import "
            f"{name}`); r3lab.replication goes in r3lab 0.3",
            FutureWarning,
            stacklevel=2,
        )
    return _load(name)
