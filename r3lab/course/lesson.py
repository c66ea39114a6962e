"""What every lesson does the same way: its set-up cell, its smoke sizes, its policy, its key numbers.

A notebook's parameters cell holds its defaults; in smoke mode (CI) `sizes` swaps in the small
values listed here, one table for the whole series, so the lesson reads the same either way.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from ..core.env import ASSETS, IN_CI, REPO_ROOT, configure_display, configure_threads, describe, seed_everything
from ..model.policy import Policy, load_policy
from ..model.tiny import TinyConfig, build_tiny

MARKER = "R3LAB_REPORT "  # a printed line the runner reads a notebook's key numbers from
SMOKE = {  # lesson -> the sizes smoke mode runs it with (CI: every notebook well under a minute)
    "00_build_vlir": {"n": 40},
    "10_interleaved_inference": {"group_size": 2, "curve_crops": 1, "repeats": 1},
    "20_sft": {"n_train": 16, "n_eval": 4, "steps": 4, "batch_size": 4, "warmup": 1.0, "max_new_tokens": 24,
               "shown": 2},
    "30_rgrpo": {"n_train": 4, "n_eval": 2, "steps": 2, "batch_size": 4, "group_size": 2, "sft_steps": 0,
                 "max_new_tokens": 16, "shown": 2},
    "40_explain_crops": {"n_samples": 2, "steps": 2, "block": 8},
    "45_attention_is_not_an_explanation": {"n_samples": 2, "steps": 2, "block": 8, "curve_steps": 2},
    "60_scale_out": {"n_samples": 2, "steps": 2, "group_size": 2},
    "70_analyse_a_real_run": {"n_explain": 1, "steps": 4},
}
SMOKE_RECIPE = dict(n_base=24, base_steps=2, pairs_steps=1, read_steps=1, compare_steps=1, base_batch=4, n_train=24, n_eval=3, sft_steps=2, sft_batch=4,
                    rgrpo_steps=1, group_size=2, rgrpo_batch=4, train_rollout={"max_new_tokens": 24},
                    eval_rollout={"max_new_tokens": 24},
                    ground_check=4, ground_min=0.0)  # notebook 50: every stage, briefly (the check measured, not enforced)


def setup(seed: int) -> dict:
    """The set-up cell: autoreload outside CI, one CPU thread for r3-tiny (unless OMP_NUM_THREADS says
    otherwise), python / numpy / torch seeded, explicit display backends; returns the machine's description."""
    if not IN_CI:
        _autoreload()
    configure_threads()
    seed_everything(seed)
    configure_display()
    return describe()


def sizes(lesson: str, smoke: bool, **values) -> SimpleNamespace:
    """The lesson's sizes: `values` (its parameters and defaults), or in smoke mode the small ones of `SMOKE`."""
    small = SMOKE.get(lesson, {})
    if missing := sorted(set(small) - set(values)):
        raise ValueError(f"sizes({lesson!r}) needs {missing}: the smoke table names them")
    return SimpleNamespace(**{**values, **(small if smoke else {})})


def start_policy(checkpoint: str = "", smoke: bool = False, seed: int = 0, shipped: str = "r3-tiny-sft"
                 ) -> tuple[Policy, str]:
    """The policy a lesson starts from, and where it came from ("" for an untrained r3-tiny).

    A given `checkpoint` is always loaded (a wrong path is an error naming what was expected);
    otherwise the shipped `assets/checkpoints/<shipped>` unless `smoke`; otherwise an untrained r3-tiny
    with the recipe's 7-px patches.
    """
    path = checkpoint or ("" if smoke else str(ASSETS / "checkpoints" / shipped))
    if path and (checkpoint or (Path(path) / "config.json").is_file()):
        return load_policy(path), path
    return build_tiny(TinyConfig(patch_size=7, seed=seed)), ""


def load_benchmark(name: str) -> dict | None:
    """`benchmarks/results/<name>.json` (what `python benchmarks/<name>.py` measured), or None if it was never run."""
    path = REPO_ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def report(**numbers) -> dict:
    """Print the lesson's key numbers in a form the runner picks up (and show them)."""
    clean = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in numbers.items()}
    print(MARKER + json.dumps(clean, default=str))
    return clean


def _autoreload() -> None:
    try:
        from IPython import get_ipython  # optional: only notebooks install IPython
    except ImportError:
        return
    ip = get_ipython()
    if ip is not None:
        ip.run_line_magic("load_ext", "autoreload")
        ip.run_line_magic("autoreload", "2")
