"""What every lesson does the same way: its set-up cell, its smoke sizes, its policy, its key numbers.

A notebook's parameters cell holds its defaults; in smoke mode (CI) `sizes` swaps in the small
values listed here, one table for the whole series, so the lesson reads the same either way.
"""

from __future__ import annotations

import html
import json
import math
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

from ..core.env import (
    ASSETS,
    IN_CI,
    REPO_ROOT,
    configure_display,
    configure_threads,
    describe,
    headless,
    pick_device,
    seed_everything,
)
from ..model.policy import Policy, load_policy
from ..model.tiny import TinyConfig, build_tiny

REPORT_MIME = "application/vnd.r3lab.report+json"  # the output field the runner reads a lesson's numbers from
SMOKE = {  # lesson -> the sizes smoke mode runs it with (CI: every notebook well under a minute)
    "00_build_vlir": {"n": 40, "n_probe": 40},
    "10_interleaved_inference": {"group_size": 2, "curve_crops": 1, "repeats": 1},
    "20_sft": {
        "n_train": 16,
        "n_eval": 4,
        "steps": 4,
        "batch_size": 4,
        "warmup": 1.0,
        "max_new_tokens": 24,
        "shown": 2,
    },
    "30_rgrpo": {
        "n_train": 4,
        "n_eval": 2,
        "steps": 2,
        "batch_size": 4,
        "group_size": 2,
        "sft_steps": 0,
        "max_new_tokens": 16,
        "shown": 2,
    },
    "40_explain_crops": {"n_samples": 2, "steps": 2, "block": 8},
    "45_which_explanation_is_faithful": {"n_samples": 2, "steps": 2, "block": 8, "curve_steps": 2},
    "47_did_the_crop_matter": {"n_live": 2, "k": 2},
    "60_scale_out": {"n_samples": 2, "steps": 2, "group_size": 2},
    "70_analyse_a_real_run": {"n_explain": 1, "steps": 4},
}
# notebook 50: every stage, briefly (the check measured, not enforced), in the kernel's own process (the job
# scheduler's start-up costs more than these steps; tests/recipe runs it)
SMOKE_RECIPE = {  # RecipeConfig.from_settings(**SMOKE_RECIPE): fields, and each phase's settings by path
    "n_train": 24,
    "n_eval": 3,
    "parallel": 1,
    "train_rollout": {"max_new_tokens": 24},
    "eval_rollout": {"max_new_tokens": 24},
    "base.batch": 4,
    "sft.batch": 4,
    "ground.steps": 2,
    "ground.mix.samples": 24,
    "ground.check.n": 4,
    "ground.check.bar": 0.0,
    "pairs.steps": 1,
    "read_first.steps": 1,
    "read_focus.steps": 1,
    "read.steps": 1,
    "read.check.n": 2,
    "read.check.bar": 0.0,
    "drill.steps": 1,
    "drill.check.n": 2,
    "drill.check.bar": 0.0,
    "compare.steps": 1,
    "compare.check.n": 2,
    "compare.check.bar": 0.0,
    "compare.check.ground_bar": 0.0,
    "sft.steps": 2,
    "sft.check.n": 2,
    "sft.check.bar": 0.0,
    "sft_read.check.n": 2,
    "sft_read.check.bar": 0.0,
    "rgrpo.steps": 1,
    "rgrpo.batch": 4,
    "rgrpo.group_size": 2,
}


# an extra of `r3lab[course]` -> (the module it brings, what a lesson uses it for)
EXTRAS = {
    "explain": ("captum", "gradient x input and integrated gradients"),
    "trl": ("trl", "TRL's GRPOTrainer"),
    "sweep": ("scipy", "an ablation sweep's seed-aware intervals"),
}


class MissingExtra(ImportError):
    """A lesson or method whose optional library is absent: one line naming the extra (a notebook shows no
    traceback for it)."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook: the message alone
        return [f"{type(self).__name__}: {self}"]


def require(*extras: str, what: str = "this lesson") -> None:
    """Refuse, in one line naming the extra to install, if a library `what` needs is absent (before anything is
    computed). `extras`: names of `EXTRAS`."""
    from importlib.util import find_spec

    for extra in extras:
        if extra not in EXTRAS:
            raise ValueError(f"no extra {extra!r}; known: {', '.join(EXTRAS)}")
        module, use = EXTRAS[extra]
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            try:
                __import__(module)
            except ImportError:
                found = False
        if not found:
            raise MissingExtra(
                f"{what} needs {module} ({use}), which is not installed: "
                f"pip install 'r3lab[{extra}]' (or 'r3lab[course]' for every lesson)"
            )


class Machine(dict):
    """What `setup` returns: the machine's facts (python, torch, device, threads, ...), shown as a small table."""

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<tr><th style="text-align:left">{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>'
            for k, v in self.items()
        )
        return f'<table class="r3lab-machine">{cells}</table>'


def setup(seed: int, device: str = "auto", needs: tuple[str, ...] | list[str] = ()) -> Machine:
    """The set-up cell: autoreload in a live kernel, one CPU thread for r3-tiny (unless OMP_NUM_THREADS says
    otherwise), python / numpy / torch seeded, library warnings that r3lab cannot fix silenced by name,
    figures that survive being saved (plotly as PNG in headless runs), progress bars off where nobody
    watches them. `device`: "auto" (CUDA when present), "cpu", "cuda", "cuda:N". `needs`: the extras the lesson
    imports (`EXTRAS`), refused in one line if absent, before anything runs. Returns the machine's facts;
    `["device"]` is the torch.device to run on."""
    require(*needs)
    dev = pick_device(device)
    if not IN_CI and not headless():
        _autoreload()
    configure_threads()
    seed_everything(seed)
    quiet()
    display = configure_display()
    if headless():
        from ..viz.static import figure_backend, register_renderer

        register_renderer()
        display["plotly_renderer"] = f"r3lab: PNG by {figure_backend()}"
    info = Machine(describe(dev))
    info["device"] = dev
    info["figures"] = (
        f"matplotlib {display['matplotlib_backend'].rsplit('.', 1)[-1]}; plotly {display['plotly_renderer']}"
    )
    return info


def quiet() -> None:
    """Silence, by message and category, the library warnings a lesson cannot act on; progress bars off headless.

    What r3lab itself caused is fixed at the source (e.g. `activation_checkpointing` for TRL); these come from
    inside TRL / transformers calls the lessons make as documented."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"You are using 'environment_factory'", category=UserWarning)
    if headless():
        os.environ["TQDM_DISABLE"] = "1"  # bars that stay at 0 % in a saved notebook help nobody
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass


def sizes(lesson: str, smoke: bool, **values) -> SimpleNamespace:
    """The lesson's sizes: `values` (its parameters and defaults), or in smoke mode the small ones of `SMOKE`."""
    small = SMOKE.get(lesson, {})
    if missing := sorted(set(small) - set(values)):
        raise ValueError(f"sizes({lesson!r}) needs {missing}: the smoke table names them")
    return SimpleNamespace(**{**values, **(small if smoke else {})})


def start_policy(
    checkpoint: str = "", smoke: bool = False, seed: int = 0, shipped: str = "r3-tiny-sft", device=None
) -> tuple[Policy, str]:
    """The policy a lesson starts from, and where it came from ("" for an untrained r3-tiny).

    A given `checkpoint` is always loaded (a wrong path is an error naming what was expected);
    otherwise the shipped `assets/checkpoints/<shipped>` unless `smoke`; otherwise an untrained r3-tiny
    with the recipe's 7-px patches. `device` (a torch.device or a name, e.g. `setup(...)["device"]`):
    where its weights go (default: where they load, the CPU).
    """
    path = checkpoint or ("" if smoke else str(ASSETS / "checkpoints" / shipped))
    if path and (checkpoint or (Path(path) / "config.json").is_file()):
        policy, source = load_policy(path), path
    else:
        policy, source = build_tiny(TinyConfig(patch_size=7, seed=seed)), ""
    if device is not None:
        policy.model.to(pick_device(str(device)))
    return policy, source


def load_benchmark(name: str) -> dict | None:
    """`benchmarks/results/<name>.json` (what `python benchmarks/<name>.py` measured), or None if it was never run."""
    path = REPO_ROOT / "benchmarks" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


class Report(dict):
    """The numbers `report` recorded. Already shown as a table when recorded, so a cell ending in
    `report(...)` shows nothing more (no raw dict)."""

    def _ipython_display_(self) -> None:
        pass


def report(**numbers) -> Report:
    """Record the lesson's key numbers for the runner (its results.json and index page) and show them as a
    small table. Floats are rounded to 4 places; returns the rounded numbers."""
    clean = Report({k: (round(v, 4) if isinstance(v, float) else v) for k, v in numbers.items()})
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return clean
    if get_ipython() is not None:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in clean.items())
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in clean.items()}
        # NaN (not measured) is JSON null; the order rides along (saved notebooks sort object keys)
        display(
            {
                REPORT_MIME: {"values": json.loads(json.dumps(record, default=str)), "order": list(record)},
                "text/html": f'<table class="r3lab-report"><tr><th>key number</th><th>value</th></tr>{rows}</table>',
                "text/plain": ", ".join(f"{k} = {_fmt(v)}" for k, v in clean.items()),
            },
            raw=True,
        )
    return clean


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _autoreload() -> None:
    try:
        from IPython import get_ipython  # optional: only notebooks install IPython
    except ImportError:
        return
    ip = get_ipython()
    if ip is not None:
        ip.run_line_magic("load_ext", "autoreload")
        ip.run_line_magic("autoreload", "2")
