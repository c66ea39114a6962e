"""A recipe folder's settings (out/recipe.json): read in any format, and held against the settings of a run that
would reuse its stages, setting by setting (a phase's by its path: `read.check.bar`, `paths.by_path`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.files import atomic_write_text
from ..core.settings import short
from ..engine.config import ENGINE
from .format_1 import ALIASES, earlier_settings
from .paths import by_path
from .recipe_config import RERUNNABLE, RecipeConfig, saved_recipe
from .recipe_format import FORMAT_VERSION, read_settings

RECIPE = "recipe.json"
# a check's settings that may change while its stage is unfinished (going on after a CheckError), and the one that
# may grow once the stage is saved (a stage that passed within fewer rounds passes within more)
MAY_CHANGE = ("bar", "ground_bar", "more", "rounds")


def read_recipe(out: str | Path) -> dict:
    """RecipeConfig's keyword values from out/recipe.json, whatever its format (the rerunnable ones left out)."""
    path = Path(out) / RECIPE
    stored = read_settings(json.loads(path.read_text()), str(path))
    return {k: v for k, v in stored.items() if k not in RERUNNABLE}


def settings_by_path(values: dict) -> dict:
    """A saved recipe's settings one by one (`paths.by_path`), as a folder holds them against a run: the engine's
    settings of the rollouts change no stage, so they are not held."""
    out = by_path(values)
    for k, v in out.items():
        if k.endswith("_rollout") and isinstance(v, dict):
            out[k] = {s: y for s, y in v.items() if s not in ENGINE}
    return out


def check_folder(cfg: RecipeConfig, out: str | Path) -> None:
    """Write out/recipe.json, or hold `cfg` against the one there: its stages are reused, so they must come from the
    same settings. A check's bar, ground_bar, more and rounds (and the learning rate of a phase of 0 steps, which only
    its added phases use) may change while its stage is unfinished; its rounds may grow at any time."""
    out, mine = Path(out), saved_recipe(cfg)
    path = out / RECIPE
    if not path.is_file():
        atomic_write_text(path, json.dumps(mine, indent=1))
        return
    stored = json.loads(path.read_text())
    read = read_settings(stored, str(path))
    theirs = saved_recipe(RecipeConfig.from_settings(**read, out=cfg.out))
    a, b = settings_by_path(theirs), settings_by_path(mine)
    diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    held = set(earlier_settings(stored)) if stored.get("format_version", 1) == 1 else set(stored)
    missing = [k for k in mine if k not in read and k != "format_version"] + (
        [k for k in ALIASES if k not in held] if stored.get("format_version", 1) == 1 else []
    )
    diff |= {k: (None, mine.get(k, "set")) for k in missing}  # a setting the folder does not record: not the same
    if not diff:
        _refuse_old_unfinished(stored, cfg, out)
        if any(theirs.get(k) != mine.get(k) for k in mine if k.endswith("_rollout")):  # the parallel jobs read them
            atomic_write_text(path, json.dumps(mine, indent=1))
        return
    stage_of = {p.name: s for s, p in cfg.stage_phases()}

    def open_to_change(key: str, was, now) -> bool:
        name, _, rest = key.partition(".")
        stage = stage_of.get(name)
        if rest == "check.rounds" and isinstance(was, int) and isinstance(now, int) and now >= was:
            return True
        if stage is None or (out / stage / "config.json").is_file():
            return False
        phase = cfg.phase(name)
        return rest in {f"check.{k}" for k in MAY_CHANGE} or (rest == "lr" and not phase.steps)

    if all(open_to_change(k, was, now) for k, (was, now) in diff.items()):
        _refuse_old_unfinished(stored, cfg, out)
        atomic_write_text(path, json.dumps(mine, indent=1))  # going on after a CheckError: allowed
        return
    raise ValueError(
        f"{out} holds stages trained with other settings "
        + ", ".join(f"{k}: {short(was)} there, {short(now)} now" for k, (was, now) in sorted(diff.items()))
        + "; use another --out, or delete that folder to start over"
    )


def _refuse_old_unfinished(stored: dict, cfg: RecipeConfig, out: Path) -> None:
    """Format 1 laid the grounding phase's schedule over its steps even without an early check; a base stage that
    format left unfinished cannot go on from its phases (their saved settings differ), only start over."""
    if stored.get("format_version", 1) >= FORMAT_VERSION or (out / "base" / "config.json").is_file():
        return
    first = cfg.base.phases[0] if cfg.base.phases else None
    if first is not None and not first.early_steps() and (out / "logs" / "base").is_dir():
        raise ValueError(
            f"{out / RECIPE} has no format_version (format 1, an earlier r3lab) and its base stage is "
            f"unfinished: format {FORMAT_VERSION} cannot go on from that stage's phases (its grounding "
            f"phase ran on another schedule). Its finished stages would be reused, but the base stage "
            f"must start over: delete {out / 'logs'}/base* (or use another --out)"
        )
