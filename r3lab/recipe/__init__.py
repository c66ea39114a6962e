"""The recipe that trains the miniature replication from nothing: its curriculum as data (stages of phases and their
checks), the runs of its stages, the replication table, the model card and the shipped checkpoints."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".recipe_config": ["RecipeConfig"],
        ".curriculum": ["Phase", "Check", "Mix", "Stage", "RGRPOStage"],
        ".checks": ["CheckError"],
        ".recipe": ["Recipe", "run_recipe"],
        ".reading": ["table_notes"],
        ".report": ["LABELS", "markdown_table", "stage_times", "model_card", "curriculum_table"],
        ".shipping": ["SHIPPED", "ship", "load_card", "warm_start", "card_scores"],
        ".ground_check": ["WhereConfig", "evaluate_where", "where_metrics"],
    },
)
