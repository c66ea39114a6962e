"""The base stage's grounding check: do its boxes land on the named landmark before anything builds on them?

Binding colour words to landmarks arrives as a late jump, and its step is not a constant: the same 2,000 grounding
steps that bound on one machine stayed at chance on another (research notes, session 9), and a base that did not
bind makes every later stage crop the wrong landmark. So the recipe measures after the grounding phase, adds
grounding phases while the bar is not met, and stops with an error naming the settings if it never is.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.files import atomic_write_text
from .probe import ProbeConfig, evaluate_where

CHECKS = "ground_checks.json"  # in out/logs/: one row per check
# settings that may change while the base stage is unfinished (after a GroundingError, to go on from the checks)
GROUND_KEYS = ("ground_min", "ground_more", "ground_rounds")


class GroundingError(RuntimeError):
    """The grounding phases ended below the bar (`RecipeConfig.ground_min`)."""


def measure(policy, world: dict, prompt: dict, n: int) -> dict:
    """Where the policy's greedy boxes land on `n` held-out "Where is the ...?" questions of `world`."""
    return evaluate_where(policy, ProbeConfig(world=world, prompt=prompt), n=n)


def record(logs: str | Path, round_: int, steps: int, metrics: dict) -> list[dict]:
    """Add (or replace) check `round_` in logs/ground_checks.json; returns every check so far."""
    path = Path(logs) / CHECKS
    rows = json.loads(path.read_text()) if path.is_file() else []
    rows = [r for r in rows if r["round"] < round_] + [{"round": round_, "steps": steps, **metrics}]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rows, indent=1))
    return rows


def load(logs: str | Path) -> list[dict]:
    path = Path(logs) / CHECKS
    return json.loads(path.read_text()) if path.is_file() else []


def failure(rows: list[dict], bar: float, logs: str | Path) -> GroundingError:
    last = rows[-1]
    return GroundingError(
        f"stage base: after {last['steps']} grounding steps the boxes centre on the named landmark in "
        f"{last['centre_on_named']} % of {Path(logs) / CHECKS}'s questions (a random landmark: "
        f"{last['random_landmark_centre']} %; the bar, ground_min: {bar} %), so every later stage would crop the "
        f"wrong landmark. Run the recipe again with a larger ground_rounds or ground_more (it goes on from the "
        f"phases in {logs}, nothing is lost), or with ground_min=0 to build on this base anyway.")
