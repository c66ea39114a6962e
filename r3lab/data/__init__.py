"""Data: the synthetic world, its task families and VLIR samples; filters, JSONL datasets, the official
formats, statistics, and the text r3-tiny's tokenizer is trained on; real benchmarks read from their published
files, and other systems' runs (VLM-R3, DeepEyes, verl, TRL) imported as Trajectories."""
from .._face import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {
    ".sample": ["Sample"],
    ".world": ["WorldConfig", "Detail", "Landmark", "Scene", "region_input_box"],
    ".tasks": ["FAMILIES", "HARD_FAMILIES", "ALL_FAMILIES", "TaskConfig", "Task", "answers_for", "make_task"],
    ".legible": ["coarse_detail_extent", "zoomed_detail_extent", "legibility", "coarse_residual"],
    ".vlir": ["task_sample", "build_samples", "retarget", "regions_from_calls", "view_mismatch", "image_size"],
    ".grounding": ["grounding_sample", "build_grounding"],
    ".filters": ["FilterConfig", "FilterReport", "check_sample", "filter_samples", "CORRUPTIONS", "corrupt"],
    ".call_styles": ["sample_style", "style_mismatch", "restyle", "check_styles"],
    ".dataset": ["VLIRDataset", "save_dataset", "load_dataset", "load_samples"],
    ".formats": ["OFFICIAL_SFT_VIEW", "ImportReport", "export_sft", "import_sft", "export_rl", "import_rl",
        "import_grounded_vqa"],
    ".stats": ["DatasetStats", "dataset_stats"],
    ".tsv": ["TsvTable", "image_at"],
    ".benchmarks": ["BENCHMARKS", "read_benchmark", "read_vstar", "read_hrbench", "read_mme_realworld",
        "read_treebench", "item_image"],
    ".traces": ["TraceBuilder", "OFFICIAL_EVAL_VIEW", "DEEPEYES_VIEW", "import_vlmr3_eval", "import_deepeyes_eval"],
    ".agent_loop": ["import_agent_loop"],
    ".trl": ["trl_trajectory", "import_trl_completions", "tool_trajectory", "judge_box", "completion_text"],
    ".vocab": ["corpus", "write_corpus"],
})
