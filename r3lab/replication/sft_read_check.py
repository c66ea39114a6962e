"""The SFT's read_one check: read_one is learned last (`sft_read_rounds`, 0 turns it off) and stops where R-GRPO has room.

On some seeds the SFT reads read_one at 88-90 % by the time compare_two reaches its bar (read_one's late jump and
compare_two's bar come within ~100 SFT steps of each other), which leaves R-GRPO nothing to add; without read_one
samples the SFT answers it at 0-4 % (research/FINDINGS.md: where the SFT stops). So the SFT learns compare_two
first without read_one samples, then adds short phases at the whole mix, each measured, until read_one reaches the
card's bar (`sft_read_min`): the SFT stops just past read_one's jump, whatever the seed.

The measurement is the SFT check's (`sft_check.measure`): read_one alone while it is below the bar (the only family
held to a bar here, a third of the rollouts), the whole row on the state that passes; its rows go to their own file.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from ..data.world import WorldConfig
from . import ground_check, sft_check
from .evaluation import EvalConfig

CHECKS = "sft_read_checks.json"  # in out/logs/: one row per check
SFT_READ_KEYS = ("sft_read_min", "sft_read_more", "sft_read_rounds", "sft_read_lr")  # may change while the SFT is unfinished


class SFTReadError(RuntimeError):
    """The SFT's read_one phases ended with read_one below the bar (`RecipeConfig.sft_read_min`)."""


record = partial(ground_check.record, file=CHECKS)  # (logs, round_, steps, metrics): every check so far
load = partial(ground_check.load, file=CHECKS)  # (logs): every check so far


def measure(policy, world: WorldConfig, eval_config: EvalConfig, n: int, bar: float) -> dict:
    """read_one on the SFT check's `n` held-out questions; below `bar` that alone, else the SFT check's whole row."""
    m = sft_check.measure(policy, world, eval_config, n, only="read_one")
    return m if m["read_one"] < bar else sft_check.measure(policy, world, eval_config, n)


def failure(rows: list[dict], bar: float, logs: str | Path) -> SFTReadError:
    last = rows[-1]
    return SFTReadError(
        f"stage sft: after {last['steps']} read_one steps the policy answers {last['read_one']} % of "
        f"{Path(logs) / CHECKS}'s held-out read_one questions (the bar, "
        f"sft_read_min: {bar} %). Run the recipe again with a larger sft_read_rounds or sft_read_more (it goes on "
        f"from the phases in {logs}, nothing is lost), or with sft_read_min=0 to go on with this SFT model anyway.")
