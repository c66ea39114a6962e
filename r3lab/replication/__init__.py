"""The miniature replication: held-out evaluation, the recipe that trains every row from nothing (its curriculum as
data: stages of phases and their checks), the ablations' environments, held-out evaluation during training and
chance levels, the 2026 audit (did the crop matter?), where crop boxes go wrong, the table and the model card,
shipping checkpoints, where a model's boxes land (the grounding check), and crop behaviour over training (collapse)."""
from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {
    ".evaluation": ["EvalConfig", "EvalResult", "summarize", "evaluate", "bootstrap_ci"],
    ".progress": ["EvalEvery", "NecessityEvery"],
    ".chance": ["chance_levels", "chance_of"],
    ".audit": ["AuditSettings", "audit_rollouts", "audit_table", "majority"],
    ".audit_run": ["AuditRun", "run_audit"],
    ".cost": ["cost_rows"],
    ".questions": ["diff_runs", "load_questions"],
    ".imported": ["audit_log", "audit_with_policy"],
    ".bench_audit": ["BenchAudit", "bench_audit_rows"],
    ".audit_card": ["audit_block", "write_audit_block"],
    ".reading": ["table_notes"],
    ".recipe_config": ["RecipeConfig"],
    ".curriculum": ["Phase", "Check", "Mix", "Stage", "RGRPOStage"],
    ".checks": ["CheckError"],
    ".recipe": ["Recipe", "run_recipe"],
    ".ablations": ["answer_only", "oracle_boxes", "random_boxes"],
    ".necessity": ["necessity_rows", "necessity_table", "bench_necessity", "BenchNecessity"],
    ".report": ["LABELS", "markdown_table", "stage_times", "model_card", "curriculum_table"],
    ".shipping": ["SHIPPED", "ship", "load_card", "warm_start", "check_scores"],
    ".ground_check": ["WhereConfig", "evaluate_where", "where_metrics"],
    ".behaviour": ["CollapseConfig", "crop_behaviour", "detect_collapse", "load_evals", "load_run"],
    ".box_report": ["box_errors", "crop_records", "format_box_errors"],
})
