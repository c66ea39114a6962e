"""Format 1 of the recipe's settings (recipe.json, model cards and flags before format 2): one flat field per phase
setting (`base_steps`, `read_min`, ...) over a curriculum that was not stored, `FORMAT_1` (format_1.json: the phases
as format 1 ran them, frozen, so that changing today's defaults never changes what an old run or the shipped card
says it trained).

`ALIASES` maps each format-1 name to the settings it now sets (several where one flat field fed several phases);
`from_flat` reads a format-1 dict over `FORMAT_1` as that format ran it, `to_flat` writes a curriculum back in
format 1 where it can be, `earlier_settings` completes the files written before some settings existed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .paths import CURRICULUM, get_setting, set_setting

FORMAT_1 = {k: v for k, v in json.loads(Path(__file__).with_name("format_1.json").read_text()).items() if k != "about"}
BASE_LR = ("ground.lr", "pairs.lr", "read_first.lr", "read_focus.lr", "read.lr", "compare.lr")
ALIASES = {  # format-1 name -> the settings it sets now (a phase's by its name, a stage's or R-GRPO's by theirs)
    "n_base": ("ground.mix.samples",),
    "base_closeups": ("ground.mix.closeups",),
    "base_pairs": ("ground.mix.pairs",),
    "base_steps": ("ground.steps",),
    "base_batch": ("base.batch",),
    "base_lr": BASE_LR,
    "ground_check": ("ground.check.n",),
    "ground_min": ("ground.check.bar",),
    "ground_early": ("ground.check.early",),
    "ground_more": ("ground.check.more",),
    "ground_rounds": ("ground.check.rounds",),
    "pairs_steps": ("pairs.steps",),
    "pairs_share": ("pairs.mix.pairs", "drill.mix.pairs"),
    "read_first_steps": ("read_first.steps",),
    "read_focus_steps": ("read_focus.steps",),
    "read_steps": ("read.steps",),
    "read_closeups": ("read_first.mix.closeups", "read.mix.closeups"),
    "read_check": ("read.check.n",),
    "read_min": ("read.check.bar",),
    "read_more": ("read.check.more",),
    "read_rounds": ("read.check.rounds",),
    "base_controls": ("read_focus.mix.controls", "read.mix.controls", "compare.mix.controls"),
    "compare_drill_steps": ("drill.steps",),
    "compare_drill_lr": ("drill.lr",),
    "compare_drill_reads": ("drill.mix.reads",),
    "drill_ground_share": ("drill.mix.grounding",),
    "drill_check": ("drill.check.n",),
    "drill_min": ("drill.check.bar",),
    "drill_more": ("drill.check.more",),
    "drill_rounds": ("drill.check.rounds",),
    "compare_steps": ("compare.steps",),
    "compare_share": ("compare.mix.comparisons",),
    "compare_crops": ("compare.mix.crops",),
    "compare_closeups": ("compare.mix.style",),
    "compare_closeup_share": ("compare.mix.closeups",),
    "compare_check": ("compare.check.n",),
    "compare_min": ("compare.check.bar",),
    "compare_ground_min": ("compare.check.ground_bar",),
    "compare_more": ("compare.check.more",),
    "compare_rounds": ("compare.check.rounds",),
    "sft_mix": ("sft.mix.weights", "sft_read.mix.weights"),
    "sft_steps": ("sft.steps",),
    "sft_lr": ("sft.lr",),
    "sft_batch": ("sft.batch",),
    "sft_check": ("sft.check.n", "sft_read.check.n"),
    "sft_min": ("sft.check.bar",),
    "sft_more": ("sft.check.more",),
    "sft_rounds": ("sft.check.rounds",),
    "sft_read_rounds": ("sft_read.check.rounds",),
    "sft_read_more": ("sft_read.check.more",),
    "sft_read_min": ("sft_read.check.bar",),
    "sft_read_lr": ("sft_read.lr",),
    "rgrpo_steps": ("rgrpo.steps",),
    "rgrpo_lr": ("rgrpo.lr",),
    "rgrpo_batch": ("rgrpo.batch",),
    "group_size": ("rgrpo.group_size",),
    "rgrpo_vision": ("rgrpo.vision",),
    "rgrpo_mix": ("rgrpo.mix",),
    "beta": ("rgrpo.beta",),
}


def curriculum() -> dict:
    """Format 1's curriculum as plain values (a copy of `FORMAT_1`): {"base": ..., "sft": ..., "rgrpo": ...}."""
    return copy.deepcopy(FORMAT_1)


def from_flat(flat: dict, values: dict | None = None) -> dict:
    """The curriculum format 1 ran (`FORMAT_1`, or `values`) with the format-1 settings of `flat` read in as that
    format ran them: a base phase of 0 steps took no check, the drill ran only before a comparison phase, and
    sft_read_rounds 0 put read_one into the SFT's first phase instead of adding read_one phases."""
    values = copy.deepcopy(values or curriculum())
    for name, v in flat.items():
        for path in ALIASES[name]:
            set_setting(values, path, v)
    phases = {p["name"]: p for st in ("base", "sft") for p in values[st]["phases"]}
    if "compare_steps" in flat and not flat["compare_steps"]:
        phases["drill"]["steps"] = 0
    for name in ("read", "drill", "compare"):
        if not phases[name]["steps"]:
            phases[name]["check"]["n"] = 0
    if "sft_read_rounds" in flat and not flat["sft_read_rounds"]:
        phases["sft_read"]["check"]["n"], phases["sft"]["mix"]["without"] = 0, ""
    return values


def to_flat(values: dict) -> dict:
    """The format-1 settings of a curriculum (plain values of base, sft and rgrpo); ValueError when format 1 cannot
    say it (another list of phases, settings it had no field for, one field's phases at different values)."""
    phases = {p["name"]: p for st in ("base", "sft") for p in values[st]["phases"]}
    default = ("ground", "pairs", "read_first", "read_focus", "read", "drill", "compare", "sft", "sft_read")
    if missing := set(default) - set(phases):
        raise ValueError(f"format 1 has no curriculum without the phases {sorted(missing)} (write format 2)")
    flat = {}
    for name, paths in ALIASES.items():
        got = [get_setting(values, p) for p in paths]
        flat[name] = got[0]
        off = name == "sft_check" and phases["sft_read"]["check"]["n"] == 0  # sft_read_rounds 0: written below
        if any(g != got[0] for g in got[1:]) and not off:
            raise ValueError(f"format 1 has one setting, {name}, for {', '.join(paths)}: they differ ({got})")
    if phases["sft_read"]["check"]["n"] == 0:
        flat["sft_read_rounds"], flat["sft_check"] = 0, phases["sft"]["check"]["n"]
    if from_flat(flat) != {k: values[k] for k in CURRICULUM}:
        raise ValueError(
            "this curriculum is not format 1's list of phases with other numbers: format 1 cannot "
            "hold it (write format 2)"
        )
    return flat


# recipe.json and model cards written before the rollout and reward settings were nested hold these keys
_NESTED_LATER = {"max_crops", "max_new_tokens", "rgrpo_temperature", "rewards", "iou_weight", "region_reward"}


def nested_rollouts(stored: dict) -> dict:
    """A format-1 dict with the flat rollout and reward keys of its first files read into `train_rollout`,
    `eval_rollout` and `reward` (the values they ran with)."""
    if not _NESTED_LATER & set(stored):
        return dict(stored)
    out = {k: v for k, v in stored.items() if k not in _NESTED_LATER}
    crops, tokens = stored.get("max_crops", 2), stored.get("max_new_tokens", 128)
    out.setdefault(
        "train_rollout",
        dict(
            max_crops=crops,
            max_new_tokens=tokens,
            max_segment_tokens=48,
            temperature=stored.get("rgrpo_temperature", 1.0),
            top_p=1.0,
        ),
    )
    out.setdefault(
        "eval_rollout", dict(max_crops=crops, max_new_tokens=tokens, max_segment_tokens=64, temperature=0.0, top_p=1.0)
    )
    out.setdefault(
        "reward",
        dict(
            preset=stored.get("rewards", "code"),
            region_weight=stored.get("iou_weight", 1.0),
            region=stored.get("region_reward", "iou"),
        ),
    )
    return out


def earlier_settings(stored: dict) -> dict:
    """A format-1 dict completed with the values that settings added since had in the runs written before them: no
    read check, no first read phase, no close-ups-only read phase, no verdict drill or drill check, no verdict check
    and no SFT check (so such a folder is still compared, and resumed, setting by setting)."""
    out, now = nested_rollouts(stored), to_flat(curriculum())
    if "tiny" not in out:  # the first files named only the patch size of the model (its other sizes: the defaults)
        out["tiny"] = {"patch_size": out.pop("patch_size", 14)}
    if "read_check" not in out:
        out.update(read_check=0, **{k: now[k] for k in ("read_min", "read_more", "read_rounds")})
    out.setdefault("ground_early", 0.0)  # grounding was measured at its end only
    out.setdefault("read_first_steps", 0)
    out.setdefault("read_focus_steps", 0)
    out.setdefault("compare_drill_steps", 0)
    out.setdefault("compare_drill_lr", now["compare_drill_lr"])  # unused without the drill
    out.setdefault("compare_drill_reads", False)
    if "drill_check" not in out:
        out.update(drill_check=0, **{k: now[k] for k in ("drill_min", "drill_more", "drill_rounds")})
    if "compare_check" not in out:
        out.update(compare_check=0, **{k: now[k] for k in ("compare_min", "compare_more", "compare_rounds")})
    out.setdefault("compare_ground_min", 0.0)  # the verdict check measured the verdict alone
    out.setdefault("compare_closeup_share", out.get("read_closeups", 0.75))  # drawn as the read phase
    out.setdefault("drill_ground_share", 0.0)  # the drills were comparisons alone
    out.setdefault("sft_mix", {})  # the SFT drew its families in equal shares
    out.setdefault("sft_read_rounds", 0)  # read_one was in the SFT's mix from the start (the rest: unused then)
    out.update({k: out.get(k, now[k]) for k in ("sft_read_more", "sft_read_min", "sft_read_lr")})
    if "sft_check" not in out:
        out.update(sft_check=0, **{k: now[k] for k in ("sft_min", "sft_more", "sft_rounds")})
    return out
