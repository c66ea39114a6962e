"""The core every layer shares: pixel geometry, the crop-call and answer grammars, 3-D positions,
the prompt, the Trajectory and its batches, and where we run (seeding, threads, display)."""
from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {
    ".env": ["IN_CI", "IN_COLAB", "IN_BINDER", "IN_TEST", "REPO_ROOT", "ASSETS", "NOTEBOOKS", "assets_dir",
        "installed_share", "seed_everything", "configure_threads", "headless", "in_kernel", "pick_device",
        "progress_disabled", "configure_display", "describe"],
    ".regions": ["Box", "ViewConfig", "smart_resize", "Frame", "zoom_scale", "Crop", "crop_and_zoom", "box_area",
        "box_iou", "box_giou", "box_contains", "clip_box"],
    ".crop_calls": ["Verdict", "CropCall", "CallStyle", "COORDS", "GRAMMARS", "format_crop_call", "parse_crop_call",
        "find_crop_calls", "closed_call_since", "check_coords", "to_input_pixels", "judge_box"],
    ".answer": ["answer_span", "extract_answer"],
    ".rope": ["mrope_positions", "batch_positions"],
    ".prompt": ["SYSTEM_PROMPT", "INSTRUCTION", "PromptConfig"],
    ".policy_like": ["PolicyLike"],
    ".config_file": ["read_config", "parse_value", "read_bounded"],
    ".files": ["atomic_write_text", "file_lock", "file_stem", "json_lines", "ImportReport", "read_records",
        "bad_record"],
    ".trajectory": ["MODEL", "ENV", "IMAGE", "KINDS", "ImageInfo", "Piece", "crop_piece", "CropEvent", "Trajectory"],
    ".batch": ["MODEL_INPUTS", "model_inputs", "by_length", "collate"],
})
