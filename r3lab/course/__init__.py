"""The course: the lessons' shared set-up, smoke sizes and key numbers, the runner that executes the
notebook series headlessly with papermill (each notebook's page in the run folder), the syllabus and its measured
times, the exercises' checks and the quizzes, the pre-class check, and the site built from a run with MkDocs."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".lesson": [
            "SMOKE",
            "SMOKE_RECIPE",
            "Machine",
            "Report",
            "setup",
            "quiet",
            "sizes",
            "start_policy",
            "load_benchmark",
            "report",
            "EXTRAS",
            "MissingExtra",
            "require",
        ],
        ".runner": ["ParameterError", "find_notebooks", "check_parameters", "run_notebook", "run_series"],
        ".claims": ["at_defaults"],
        ".site": ["build_site"],
        ".exercises": ["Exercise", "check"],
        ".quizzes": ["quiz", "answer"],
        ".evidence": ["faithfulness_intervals", "faithfulness_rows", "faithfulness_verdicts", "pair_rows"],
    },
)
