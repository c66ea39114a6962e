"""Progress on held-out questions while training, and what guessing scores.

`EvalEvery(held_out, every=25)` is a `train_sft` / `train_rgrpo` callback: every `every` steps it answers the
same held-out questions greedily (`evaluate`) and keeps the per-family numbers as a `MetricLog`
(`"read_one/accuracy"`, `"all/reward"`, ...), which `r3lab.viz.plot_eval_curve` draws. Training curves are
measured on the batch just trained on; this one is measured on questions the model never trains on.

`chance_levels(tasks, world)` is the accuracy of a uniform guess among each family's possible answers: the line
a figure of accuracies needs.

`NecessityEvery(held_out, every=50)` is the opt-in variant for tool necessity (`r3lab.evaluation.necessity`): every
`every` steps, the held-out questions are answered with the model's own crops and under the five ablations, and the
"all" row's keys (`tool_gain`, `tool_harm`, `zooming_gap`, `crop_rate_need`, ...) join the training log's row of
that step, so `log.jsonl` carries them and `r3lab dashboard` draws them over training. Six greedy rollouts per
question per evaluation: a few questions (8-32) every few dozen steps keep it cheap; nothing runs unless it is
added (`r3lab train ... --necessity-every N --necessity-data D`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch

from ..train import dist
from ..train.metrics import MetricLog
from .chance import chance_levels  # noqa: F401  (where it was first defined: r3lab.evaluation.progress)
from .evaluation import EvalConfig, EvalResult, evaluate
from .necessity import KEYS as NECESSITY_KEYS

KEYS = ("accuracy", "crop_rate", "crop_iou", "reward")  # what each evaluation keeps per family


class EvalEvery:
    """A training callback: greedy held-out evaluation every `every` steps (and at the last step).

    `before`, an `EvalResult` of the same questions at step 0 (the lesson's "before" table), starts the curve
    without evaluating twice. The model's train/eval mode and torch's random state are restored afterwards, so a
    run with this callback trains exactly as one without it. `self.log` holds one row per evaluation,
    `self.results` the `EvalResult`s by step; only the main process evaluates under DDP.
    """

    def __init__(
        self,
        samples: Sequence,
        every: int,
        config: EvalConfig | None = None,
        total: int | None = None,
        before: EvalResult | None = None,
        keys: Sequence[str] = KEYS,
    ):
        if every < 1:
            raise ValueError(f"EvalEvery: every must be at least 1 step, got {every}")
        self.samples, self.every, self.total = list(samples), every, total
        if not self.samples:
            raise ValueError("EvalEvery: no held-out samples to evaluate")
        self.config, self.keys = config or EvalConfig(), tuple(keys)
        self.log, self.results = MetricLog(), {}
        if before is not None:
            self.add(0, before)

    def add(self, step: int, result: EvalResult) -> None:
        """Record an evaluation made elsewhere (e.g. the lesson's "after" table) at `step`."""
        self.results[step] = result
        self.log.log(step, **{f"{fam}/{k}": row.get(k) for fam, row in result.rows.items() for k in self.keys})

    def __call__(self, state, row: dict) -> None:
        step = state.step
        last = self.total is not None and step == self.total
        if (step % self.every and not last) or step in self.results or not dist.info().is_main:
            return
        model = state.policy.model
        was_training, rng = model.training, torch.get_rng_state()
        try:
            self.add(step, evaluate(state.policy, self.samples, self.config, progress=False))
        finally:
            torch.set_rng_state(rng)
            model.train(was_training)

    @property
    def last(self) -> EvalResult | None:
        """The latest evaluation (None before the first)."""
        return self.results[max(self.results)] if self.results else None


class NecessityEvery(EvalEvery):
    """A training callback: tool necessity on the held-out `samples` every `every` steps (and at the last step),
    written into the training log's row of that step (a row of its own when that step logged none) and saved to
    `out_dir/log.jsonl` at once. `config.necessity` is set; `n` keeps the first n samples (0: all)."""

    def __init__(
        self, samples: Sequence, every: int, config: EvalConfig | None = None, total: int | None = None, n: int = 0
    ):
        if n < 0:
            raise ValueError(f"NecessityEvery: n must be 0 (all) or a number of samples, got {n}")
        super().__init__(
            list(samples)[: n or None],
            every,
            replace(config or EvalConfig(), necessity=True),
            total,
            keys=NECESSITY_KEYS,
        )

    def __call__(self, state, row: dict) -> None:
        before = set(self.results)
        super().__call__(state, row)
        if state.step in before or state.step not in self.results:
            return
        res = self.results[state.step]
        res.trajectories = []  # a long run evaluates many times: keep the numbers, not every rollout's images
        values = {k: res.rows["all"].get(k) for k in NECESSITY_KEYS}
        log = state.log
        if log.rows and log.rows[-1].get("step") == state.step:
            log.rows[-1].update(_plain_row(values))
        else:
            log.log(state.step, **values)
        if getattr(state.config, "out_dir", ""):
            log.save_jsonl(f"{state.config.out_dir}/log.jsonl")


def _plain_row(values: dict) -> dict:
    return {k: v for k, v in MetricLog().log(0, **values).items() if k != "step"}  # NaN -> null, as the log stores it
