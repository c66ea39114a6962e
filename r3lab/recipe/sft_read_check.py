"""The SFT's read_one check (the sft_read phase's): read_one is learned last and stops where R-GRPO has room.

On some seeds the SFT reads read_one at 88-90 % by the time compare_two reaches its bar (read_one's late jump and
compare_two's bar come within ~100 SFT steps of each other), which leaves R-GRPO nothing to add; without read_one
samples the SFT answers it at 0-4 % (research/FINDINGS.md: where the SFT stops). So the SFT learns compare_two
first without read_one samples, then adds short phases at the whole mix, each measured, until read_one reaches the
card's bar (the phase's check.bar): the SFT stops just past read_one's jump, whatever the seed.

The measurement is the SFT check's (`sft_check.measure`): read_one alone while it is below the bar (the only family
held to a bar here, a third of the rollouts), the whole row on the state that passes. Its first round measures the
model the SFT check just measured, so it reads that record instead (`Recipe`: a phase of 0 steps).
"""
from __future__ import annotations

from ..data.world import WorldConfig
from . import sft_check
from ..evaluation.evaluation import EvalConfig


def measure(policy, world: WorldConfig, eval_config: EvalConfig, n: int, bar: float,
            seed: int = sft_check.SEED) -> dict:
    """read_one on the SFT check's `n` held-out questions; below `bar` that alone, else the SFT check's whole row."""
    m = sft_check.measure(policy, world, eval_config, n, seed, only="read_one")
    return m if m["read_one"] < bar else sft_check.measure(policy, world, eval_config, n, seed)
