"""TRL's rollouts as r3lab `Trajectory`s while it trains, so `explain_crops`, the views, `export_html` and the
crop dashboard read them: `TrajectoryRecorder`, a zero-weight TRL reward function that lays every batch out
with `r3lab.importers.trl.tool_trajectory` (the one place a TRL completion becomes a Trajectory) and logs the
executed crops per rollout as `rewards/crops`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.regions import ViewConfig
from ..core.trajectory import Trajectory
from ..importers.trl import tool_trajectory


class TrajectoryRecorder:
    """A TRL reward function (give it weight 0) that keeps every batch's rollouts as Trajectories.

    `processor` renders each prompt with the environment's tool as TRL did; `trajectories` holds the last
    batch, `history` the last `keep` batches; `path` (a .jsonl) receives every batch, without pixels, as
    `r3lab eval` writes trajectories (so `r3lab dashboard` reads a TRL run). Its value is the number of
    crops each rollout executed."""

    __name__ = "crops"

    def __init__(
        self,
        processor,
        view: ViewConfig,
        coords: str = "absolute",
        keep: int = 50,
        path: str | os.PathLike | None = None,
    ):
        self.processor, self.view, self.coords, self.keep = processor, view, coords, keep
        self.path = Path(path) if path else None
        self.trajectories: list[Trajectory] = []
        self.history: list[list[Trajectory]] = []

    def __call__(
        self,
        prompts,
        completions,
        environments=None,
        answers=None,
        gt_boxes=None,
        family=None,
        sample_id=None,
        question=None,
        trainer_state=None,
        **_,
    ):
        if environments is None:
            raise ValueError(
                "TrajectoryRecorder needs TRL's environments: train with "
                "environment_factory=CropEnvironment.factory(...)"
            )
        out = []
        for n, (prompt, completion, env) in enumerate(zip(prompts, completions, environments)):
            text = self.processor.apply_chat_template(
                prompt, tools=[env.image_zoom_in_tool], tokenize=False, add_generation_prompt=True
            )
            meta = {"format": "trl", "step": int(getattr(trainer_state, "global_step", 0) or 0), "row": n}
            out.append(
                tool_trajectory(
                    text,
                    completion,
                    env.image,
                    self.view,
                    self.coords,
                    question=question[n] if question else _question(prompt),
                    answers=list(answers[n]) if answers else [],
                    gt_boxes=[tuple(b) for b in gt_boxes[n]] if gt_boxes else [],
                    family=family[n] if family else "",
                    sample_id=str(sample_id[n]) if sample_id else "",
                    meta=meta,
                )
            )
        self.trajectories = out
        self.history = (self.history + [out])[-self.keep :]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.writelines(json.dumps(t.to_dict("none")) + "\n" for t in out)
        return [float(len(t.crops)) for t in out]


def _question(prompt) -> str:
    for m in reversed(prompt if not isinstance(prompt, str) else []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else "".join(str(p.get("text") or "") for p in c if isinstance(p, dict))
    return ""
