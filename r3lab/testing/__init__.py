"""What tests, notebooks and benchmarks build on without downloading anything: toy policies, images, samples and
trajectories; miniature copies of the real benchmarks and of other systems' runs, each in its exact format; CUDA-graph
capture stood in for on a CPU."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".toys": ["tiny_policy", "toy_image", "toy_trajectory", "toy_samples", "png_header"],
        ".mini_benchmarks": [
            "scene",
            "jpeg_base64",
            "write_benchmark",
            "write_vstar",
            "write_hrbench",
            "write_mme_realworld",
            "write_treebench",
        ],
        ".mini_runs": [
            "write_vlmr3_eval",
            "write_deepeyes_eval",
            "write_agent_loop",
            "write_trl_completions",
            "write_training_log",
        ],
        ".mini_sweeps": ["write_mini_sweep"],
        ".graphs": ["standin_graphs"],
    },
)
