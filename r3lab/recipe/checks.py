"""A phase's check, whatever it measures: taking it, recording it (logs/<phase>_checks.json, one row per round),
whether it passes, the one error when it never does, and its lines in the model card.

`MEASURES` registers each measure: the module whose `take(policy, recipe, phase) -> dict` measures it
(`ground_check`, `read_check`, `drill_check`, `compare_check`, `sft_check`), what it reports in words and which
number meets the bar. A new check is its module and one entry here. This module imports none of them until a check
is taken (the curriculum's settings are read without torch).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..core.files import atomic_write_text


class CheckError(ValueError):
    """A phase's check stayed below its bar after its last added phase; the message names the settings to change."""


def _control(row: dict) -> str:  # rows written before control was measured have none
    return (
        f", control {row['control']} % ({row['control_crop_rate']} % cropped)" if row.get("control") is not None else ""
    )


@dataclass(frozen=True)
class Measure:
    """What a check measures: where its `take` lives, and its words in the error and the model card."""

    module: str  # the module of its `take(policy, recipe, phase) -> dict` (relative to this package, or absolute)
    metric: str  # the record's number held to the bar
    what: str  # the number in a few words (the curriculum table)
    noun: str  # "after 200 <noun> steps"
    result: Callable[[dict, str], tuple]  # (last record, its file) -> what it measured and a note, for the error
    consequence: str  # why falling short matters
    title: str  # the card section's title
    line: Callable[[dict], str]  # one record as a card line (after "- after N <noun> steps: ")
    parts: tuple = ()  # what `Check.only` may name: a part taken alone while below the bar

    def take(self, policy, recipe, phase) -> dict:
        """The measurement of phase `phase`'s check on `policy` under `recipe` (its module's `take`)."""
        return importlib.import_module(self.module, __package__).take(policy, recipe, phase)


MEASURES = {
    "where": Measure(
        ".ground_check",
        "centre_on_named",
        "box centres on the named landmark",
        "grounding",
        lambda r, f: (
            f"the boxes centre on the named landmark in {r['centre_on_named']} % of {f}'s questions",
            f"a random landmark: {r['random_landmark_centre']} %",
        ),
        "so every later stage would crop the wrong landmark",
        'Grounding check (held-out "Where is ...?" questions after each grounding phase)',
        lambda r: (
            f"box centres on the named landmark {r['centre_on_named']} % (a random landmark: "
            f"{r['random_landmark_centre']} %), mean IoU {r['mean_iou']}"
        ),
    ),
    "read": Measure(
        ".read_check",
        "read_accuracy",
        "close-ups read right",
        "read",
        lambda r, f: (
            f"the policy reads {r['read_accuracy']} % of {f}'s held-out close-ups",
            f"chance: {r['chance']} %",
        ),
        "so SFT would start from a model that cannot read the detail",
        "Read check (held-out close-ups, the crop opened, after each read phase)",
        lambda r: f"{r['read_accuracy']} % of {r['n']} held-out close-ups read right (chance: {r['chance']} %)",
    ),
    "text_verdict": Measure(
        ".drill_check",
        "text_verdict",
        "verdicts right, as text",
        "drill",
        lambda r, f: (
            f"the policy prefers the true verdict in {r['text_verdict']} % of {f}'s held-out text-only comparisons",
            "chance: 50 %",
        ),
        "so the comparison phase would start without the verdict",
        "Drill check (held-out comparisons as text, no image, after each drill phase)",
        lambda r: (
            f"the true verdict preferred in {r['text_verdict']} % of {r['n']} held-out comparisons (chance: "
            f"{r['chance']} %)"
        ),
    ),
    "verdict": Measure(
        ".compare_check",
        "verdict",
        "verdicts right, both crops in place",
        "comparison",
        lambda r, f: (
            f"the policy prefers the true verdict in {r['verdict']} % of {f}'s held-out comparisons",
            "chance: 50 %",
        ),
        "so compare_two would stay at chance after SFT",
        "Verdict check (held-out comparisons, both crops in place, after each comparison phase)",
        lambda r: (
            f"the true verdict preferred in {r['verdict']} % of {r['n']} held-out comparisons (chance: {r['chance']} %)"
        ),
    ),
    "sft": Measure(
        ".sft_check",
        "compare_two",
        "compare_two answered right",
        "SFT",
        lambda r, f: (
            f"the policy answers {r['compare_two']} % of {f}'s held-out compare_two questions",
            f"read_one {r['read_one']} %",
        ),
        "",
        "SFT check (held-out questions, greedy with crops, after each SFT phase)",
        lambda r: (
            f"compare_two {r['compare_two']} %, read_one {r['read_one']} %{_control(r)} of {r['n']} held-out "
            f"questions each (crop IoU {r['crop_iou']}, {r['contains_detail']} % of crops on the detail)"
        ),
        ("read_one", "compare_two"),
    ),
    "sft_read": Measure(
        ".sft_check",
        "read_one",
        "read_one answered right",
        "read_one",
        lambda r, f: (f"the policy answers {r['read_one']} % of {f}'s held-out read_one questions", ""),
        "",
        "SFT read_one check (read_one learned last; after each read_one phase)",
        lambda r: (
            f"read_one {r['read_one']} %"
            + (
                f", compare_two {r['compare_two']} %{_control(r)} of {r['n']} held-out questions each (crop IoU "
                f"{r['crop_iou']})"
                if "compare_two" in r
                else f" of {r['n']} held-out questions"
            )
        ),
        ("read_one", "compare_two"),
    ),
}
GROUND = "centre_on_named"  # what a check's ground_bar holds to its bar: the "where" measure's metric


def file_of(phase: str) -> str:
    """The file in out/logs/ that holds phase `phase`'s check records."""
    return f"{phase}_checks.json"


def record(logs: str | Path, phase: str, round_: int, steps: int, metrics: dict) -> list[dict]:
    """Add (or replace) round `round_` of phase `phase`'s check in logs/<phase>_checks.json; returns every round so
    far (round -1: taken inside the phase, `Check.early`)."""
    path = Path(logs) / file_of(phase)
    rows = load(logs, phase)
    rows = [r for r in rows if r["round"] < round_] + [{"round": round_, "steps": steps, **metrics}]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(rows, indent=1))
    return rows


def load(logs: str | Path, phase: str) -> list[dict]:
    """Every recorded round of phase `phase`'s check ([] when none was taken)."""
    path = Path(logs) / file_of(phase)
    return json.loads(path.read_text()) if path.is_file() else []


def passes(metrics: dict, check) -> bool:
    """Whether `metrics` meet `check`'s bar and, where it measured the grounding too, its ground_bar."""
    return metrics[MEASURES[check.measure].metric] >= check.bar and (
        not check.ground_bar or metrics.get(GROUND, 100.0) >= check.ground_bar
    )


def failure(stage: str, phase, rows: list[dict], logs: str | Path) -> CheckError:
    """The error after the last round: what was measured, the bar, and the settings that go on from here."""
    check, last, m = phase.check, rows[-1], MEASURES[phase.check.measure]
    flag, file = phase.name.replace("_", "-"), Path(logs) / file_of(phase.name)
    if last[m.metric] >= check.bar:  # the grounding measured alongside is what fell short
        said = (
            f"the policy's box centres land on the named landmark in {last[GROUND]} % of {file}'s held-out "
            f"grounding questions (the bar, {phase.name}.check.ground_bar: {check.ground_bar} %; the "
            f"{m.metric} {last[m.metric]} % passed)"
        )
        knob = f"--{flag}-ground-bar 0"
    else:
        text, note = m.result(last, file)
        said = f"{text} ({note + '; ' if note else ''}the bar, {phase.name}.check.bar: {check.bar} %)"
        knob = f"--{flag}-bar 0"
    why = f", {m.consequence}" if m.consequence else ""
    return CheckError(
        f"stage {stage}: after {last['steps']} {m.noun} steps {said}{why}. Run the recipe again with a larger "
        f"--{flag}-rounds or --{flag}-more ({phase.name}.check.rounds / .more; it goes on from the phases in "
        f"{logs}, nothing is lost), or with {knob} to go on with this model anyway."
    )


def card_section(phase, rows: list[dict]) -> str:
    """Phase `phase`'s check in the model card: one line per round ("" when it was never taken)."""
    if not rows:
        return ""
    m = MEASURES[phase.check.measure]
    lines = [
        f"- after {r['steps']} {m.noun} steps: {m.line(r)}"
        + (
            f"; box centres on the named landmark in {r[GROUND]} % of as many grounding questions"
            if GROUND in r and m.metric != GROUND
            else ""
        )
        for r in rows
    ]
    return f"## {m.title}\n" + "\n".join(lines) + "\n\n"


def take(policy, recipe, phase) -> dict:
    """Measure phase `phase`'s check on `policy` under `recipe` (a RecipeConfig): its measure's `take`; with
    `check.only`, that part alone while below the bar and the whole measure once it passes; with `ground_bar`, the
    grounding on the "where" check's held-out questions too. In a distributed run every rank calls it and measures
    its share (the same result on every rank)."""
    c = phase.check
    m = MEASURES[c.measure].take(policy, recipe, phase)
    if c.only and passes(m, c):
        m = MEASURES[c.measure].take(policy, recipe, replace(phase, check=replace(c, only="")))
    if c.ground_bar:  # as many questions
        from .ground_check import measure

        m[GROUND] = measure(policy, dict(recipe.world, **recipe.base_world), c.n)[GROUND]
    return m
