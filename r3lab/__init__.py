"""r3lab: a teaching and analysis toolkit for VLM-R3, models that look again.

The names below are the README tour's; everything else lives in the subpackages, which follow the
data flow: core -> data, model -> engine, importers -> train, explain, bench -> evaluation -> recipe, audit,
sweep -> viz -> course, integrations, testing -> cli.
Names load on first use, so `import r3lab` costs nothing until one is needed.
"""

from ._lazy import lazy

__version__ = "0.1.0"
__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".core.env": ["configure_threads", "seed_everything", "configure_display", "describe"],
        ".core.regions": ["ViewConfig"],
        ".core.trajectory": ["Trajectory"],
        ".data.sample": ["Sample"],
        ".data.world": ["WorldConfig"],
        ".data.tasks": ["TaskConfig"],
        ".data.vlir": ["build_samples"],
        ".data.dataset": ["save_dataset", "load_dataset"],
        ".model.policy": ["Policy", "load_policy"],
        ".model.tiny": ["TinyConfig", "build_tiny"],
        ".engine.config": ["RolloutConfig"],
        ".engine.rollouts": ["rollout"],
        ".train.config": ["SFTConfig", "RGRPOConfig"],
        ".train.sft": ["train_sft = train"],
        ".train.rgrpo": ["train_rgrpo = train"],
        ".train.rewards": ["score"],
        ".explain.capture": ["capture_attention", "attention_maps"],
        ".explain.contract": ["WhyConfig"],
        ".explain.crops": ["explain_crops"],
        ".evaluation.evaluation": ["EvalConfig", "evaluate"],
        ".recipe.recipe": ["RecipeConfig", "run_recipe"],
        ".sweep.results": ["load_sweep"],
        ".viz.mpl": ["plot_trajectory"],
        ".viz.plotly_view": ["figure_trajectory"],
        ".viz.widgets": ["step_player"],
        ".viz.page": ["export_html"],
        ".viz.results": ["plot_results"],
    },
    subpackages=(
        "core",
        "data",
        "model",
        "engine",
        "importers",
        "train",
        "explain",
        "bench",
        "evaluation",
        "recipe",
        "audit",
        "sweep",
        "viz",
        "course",
        "integrations",
        "testing",
        "cli",
    ),
)
