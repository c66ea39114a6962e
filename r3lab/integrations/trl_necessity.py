"""Tool necessity while TRL trains: `TRLNecessity`, a transformers `TrainerCallback` for `grpo_trainer` /
`train_trl` (`r3lab train trl --necessity-every N --necessity-data HELD_OUT`).

GRPOTrainer trains `policy.model` in place, so between two optimizer steps the callback answers held-out questions
with that same model through r3lab's engine: greedily, with the model's own crops and under the five ablations of
`r3lab.evaluation.necessity` (crops off, blank, coarse, a random box, the ground-truth box), which TRL's tool loop
cannot run. The policy is prompted as TRL trains it: Qwen's tool grammar (`<tool_call>` ... `image_zoom_in_tool`,
the crop in a `<tool_response>` turn) in the run's coordinates, with TRL's instruction; the system turn's tool
declaration is r3lab's text, not TRL's rendering of the same schema. The "all" row's keys (`tool_gain`,
`tool_harm`, `zooming_gap`, `crop_rate_need`, ...) join TRL's log row of that step (`trainer.state.log_history`,
`trl_log.jsonl`; a row of their own when that step logged none), which `r3lab dashboard OUT/trl_log.jsonl` draws.
Only the main process evaluates; the model's train/eval mode and torch's random state are restored afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Sequence

from transformers import TrainerCallback

from ..core.crop_calls import CallStyle
from ..core.prompt import PromptConfig
from ..core.settings import short
from ..evaluation.evaluation import EvalConfig
from ..evaluation.necessity import KEYS
from ..evaluation.progress import EvalEvery
from ..train.metrics import MetricLog
from .trl_env import tool_instruction
from .trl_train import TRLConfig


def trl_prompt(policy, coords: str = "absolute") -> PromptConfig:
    """The policy's prompt as `train_trl` frames its questions: the tool grammar in `coords`, TRL's instruction."""
    return replace(policy.prompt.with_calls(CallStyle(coords, "tool")), instruction=tool_instruction(coords))


class TRLNecessity(TrainerCallback):
    """Every `every` optimizer steps (and at the last, `cfg.steps`), tool necessity on the held-out `samples` (their
    first `n`; 0: all) joins TRL's log. `cfg`: the run's TRLConfig (coordinates, crop and token budgets);
    `config`: the EvalConfig to evaluate with (default: the checkpoint's, with the run's budgets, greedy)."""

    def __init__(
        self,
        policy,
        samples: Sequence,
        every: int,
        cfg: TRLConfig | None = None,
        n: int = 0,
        config: EvalConfig | None = None,
    ):
        if n < 0:
            raise ValueError(f"TRLNecessity: n must be 0 (all) or a number of samples, got {short(n)}")
        cfg = cfg or TRLConfig()
        r = cfg.rollout
        budgets = {
            "max_crops": r.max_crops,
            "max_new_tokens": r.max_new_tokens,
            "max_segment_tokens": r.max_segment_tokens,
        }
        config = config or EvalConfig.for_policy(policy, rollout=budgets)
        self.policy, self.prompt = policy, trl_prompt(policy, cfg.coords)
        self.every = EvalEvery(list(samples)[: n or None], every, replace(config, necessity=True), cfg.steps, keys=KEYS)
        self.pending: dict[int, dict] = {}  # measured, not yet in TRL's log

    @property
    def results(self) -> dict:
        """The `EvalResult`s by step (numbers only: the rollouts are dropped)."""
        return self.every.results

    def on_step_end(self, args, state, control, **kwargs):
        step, before = state.global_step, set(self.every.results)
        prompt, self.policy.prompt = self.policy.prompt, self.prompt
        try:
            self.every(SimpleNamespace(step=step, policy=self.policy), {})
        finally:
            self.policy.prompt = prompt
        if step in self.every.results and step not in before:
            res = self.every.results[step]
            res.trajectories = []  # a long run evaluates many times: keep the numbers, not every rollout's images
            row = MetricLog().log(step, **{k: res.rows["all"].get(k) for k in KEYS})  # NaN -> null, as logs hold it
            if control.should_log:  # set by DefaultFlowCallback, which runs first: TRL logs this step next
                self.pending[step] = row
            else:  # a step TRL does not log (logging_steps > 1): a row of its own, in step order
                state.log_history.append(row)

    def on_log(self, args, state, control, logs=None, **kwargs):
        # Trainer.log appends the step's row to log_history, then calls on_log: the keys join that row
        if state.log_history and (row := self.pending.pop(state.log_history[-1].get("step"), None)):
            state.log_history[-1].update(row)

    def on_train_end(self, args, state, control, **kwargs):
        for step in sorted(self.pending):  # announced but never logged (a trainer that skipped its log)
            state.log_history.append(self.pending.pop(step))
