"""Sweeps: one command over a grid of settings x seeds, each run its own process and folder, resumable, on a local
pool or a Ray cluster (`run_sweep`); seed-aware statistics over seeds and questions, paired against a baseline
(`stats`); a sweep folder read back (`load_sweep(DIR).frame()`, `.summary()`)."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".spec": ["SweepSpec", "Run", "read_spec", "spec_from_dict"],
        ".runner": ["run_sweep", "SweepOutcome"],
        ".results": ["Sweep", "PointResult", "load_sweep", "notes", "seed_differences"],
        ".stats": ["Estimate", "Comparison", "estimate", "compare", "holm"],
        ".status": ["RunStatus", "read_status"],
        ".scores": ["question_scores", "write_scores"],
    },
)
