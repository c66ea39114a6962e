"""Views: a trajectory as matplotlib figures, a plotly figure, a step player and one HTML page, all from the
same display steps; the figures of data, training, results and benchmark runs; the crop-behaviour dashboard;
crop explanations and their faithfulness; the audit's figure and its report pages; figures and tables that survive
being saved (plotly as PNG, tables as HTML). Every function returns its figure."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".steps": ["Step", "crop_boxes", "trajectory_steps"],
        ".mpl": ["draw_boxes", "plot_trajectory", "plot_attention", "plot_step"],
        ".plotly_view": ["figure_trajectory"],
        ".widgets": ["StepPlayer", "step_player"],
        ".page": ["trajectory_html", "export_html"],
        ".datasets": ["plot_stats", "plot_sample", "plot_samples", "plot_zoom_reveals"],
        ".training": ["plot_metrics", "LivePlot", "plot_clipped_objective", "plot_eval_curve"],
        ".results": [
            "ROW_COLOURS",
            "changed_answers",
            "is_right",
            "row_colour",
            "plot_results",
            "plot_side_by_side",
            "plot_table",
        ],
        ".inference": ["plot_positions", "plot_group", "plot_cost_curve"],
        ".bench": ["plot_bench"],
        ".explain": ["plot_record", "plot_faithfulness", "explain_report"],
        ".static": ["Table", "table", "markdown_table", "explanations_table", "figure_png", "register_renderer"],
        ".dashboard": ["DashboardConfig", "crop_dashboard", "figure_dashboard", "save_dashboard"],
        ".audit": ["plot_audit"],
        ".audit_report": ["audit_html", "diff_html"],
    },
)
