"""Data: the synthetic world, its task families and VLIR samples; filters, JSONL datasets, the official
formats, statistics, and the text r3-tiny's tokenizer is trained on. Real benchmarks are `r3lab.bench`'s,
other systems' runs `r3lab.importers`'."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".sample": ["Sample"],
        ".world": ["WorldConfig", "Detail", "Landmark", "Scene", "region_input_box"],
        ".tasks": ["FAMILIES", "HARD_FAMILIES", "ALL_FAMILIES", "TaskConfig", "Task", "answers_for", "make_task"],
        ".legible": ["coarse_detail_extent", "zoomed_detail_extent", "legibility", "coarse_residual"],
        ".vlir": ["task_sample", "build_samples", "retarget", "regions_from_calls", "view_mismatch", "image_size"],
        ".grounding": ["grounding_sample", "build_grounding"],
        ".filters": ["FilterConfig", "FilterReport", "check_sample", "filter_samples", "CORRUPTIONS", "corrupt"],
        ".call_styles": ["sample_style", "style_mismatch", "restyle", "check_styles"],
        ".dataset": ["VLIRDataset", "save_dataset", "load_dataset", "load_samples"],
        ".formats": ["OFFICIAL_SFT_VIEW", "export_sft", "import_sft", "export_rl", "import_rl"],
        ".grounded_vqa": ["import_grounded_vqa"],
        ".stats": ["DatasetStats", "dataset_stats"],
        ".vocab": ["corpus", "write_corpus"],
    },
)
