"""r3lab: a teaching and analysis toolkit for VLM-R3, models that look again."""
from .env import configure_display, configure_threads, describe, seed_everything
from .models import PromptConfig, Policy, R3Processor, TinyConfig, build_tiny, load_policy
from .regions import (
    Crop, CropCall, Frame, Verdict, ViewConfig, box_iou, crop_and_zoom, find_crop_calls, format_crop_call,
    parse_crop_call, smart_resize, zoom_scale,
)
from .rope import mrope_positions
from .rollout import RolloutConfig, crop_script, rollout
from .samples import Sample
from .trajectory import ENV, IMAGE, MODEL, CropEvent, ImageInfo, Piece, Trajectory, collate
from .world import Scene, WorldConfig
from .tasks import Task, TaskConfig, make_task
from .legibility import coarse_detail_extent, legibility, zoomed_detail_extent
from .vlir import build_samples, retarget
from .filters import FilterConfig, FilterReport, check_sample, filter_samples
from .dataset import VLIRDataset, load_dataset, load_samples, save_dataset
from .formats import export_rl, export_sft, import_grounded_vqa, import_rl, import_sft
from .vlir_stats import dataset_stats, plot_sample, plot_samples, plot_stats
from .attention import CaptureConfig, attention_maps, capture_attention
from .attention_maps import AttentionMaps
from .explain import CropExplanation, ExplainConfig, counterfactual_trajectory, disagreements, explain_crops
from .viz_mpl import plot_attention, plot_step, plot_trajectory, trajectory_steps
from .viz_plotly import figure_trajectory
from .viz_widgets import StepPlayer, step_player
from .viz_html import export_html
from .rewards import RewardTerm, Scores, extract_answer, normalize_answer, preset as reward_preset, score
from .metrics import LivePlot, MetricLog, plot_metrics
from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .sft import SFTConfig, TokenScorer, supervised_text, token_logprobs, train as train_sft
from .rgrpo import (
    RGRPOConfig, group_advantages, plot_clipped_objective, policy_loss, scripted_rollout, train as train_rgrpo, train_step,
)
from .evaluate import EvalConfig, EvalResult, bootstrap_ci, evaluate, plot_results, plot_side_by_side
from .recipe import Recipe, RecipeConfig, oracle_boxes, random_boxes, run_recipe, warm_start
from .ablations import markdown_table, model_card, plot_table

__version__ = "0.1.0"
