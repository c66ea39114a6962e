"""Real benchmarks: V*, HR-Bench, MME-RealWorld and TreeBench read from their published files, a policy run
on them through the engine, and their answers scored by lmms-eval's / VLMEvalKit's rules."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".tsv": ["TsvTable", "image_at"],
        ".readers": [
            "BENCHMARKS",
            "read_benchmark",
            "read_vstar",
            "read_hrbench",
            "read_mme_realworld",
            "read_treebench",
            "item_image",
        ],
        ".scoring": [
            "answer_text",
            "letter_vstar",
            "letter_regex",
            "letter_can_infer",
            "treebench_boxes",
            "treebench_iou",
            "best_overlap_iou",
            "score_item",
            "cycle_accuracy",
        ],
        ".run": ["BenchConfig", "BenchResult", "run_bench"],
        ".bench_items": ["summarize_bench", "load_bench_run"],
    },
)
