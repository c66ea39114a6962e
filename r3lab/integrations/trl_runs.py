"""TRL tool-calling rollouts as r3lab `Trajectory`s, so `explain_crops`, the views and `export_html` read them.

A TRL completion with tools is a list of messages: assistant turns (reasoning, content, `tool_calls`)
and `tool` results (an image part for an executed crop, text for a refused box). It is laid out as
r3lab lays out its own episodes (`r3lab.data.traces.TraceBuilder`, shared with every importer): each
assistant turn is one `model_text` piece written as Qwen3-VL's chat template writes it, ending with the
`<|im_end|>` the model sampled; the template's tool-response wrapper is `env_text`; an executed crop is
an `image` piece with its `CropEvent`; a refused box is a `CropEvent` with the text answered as its note.
Each call is judged again by `judge_box`, the rule `CropEnvironment` applied during the rollout.

`TrajectoryRecorder` does this inside training: a zero-weight TRL reward function that keeps each batch's
rollouts as Trajectories (and logs the executed crops per rollout as `rewards/crops`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..core.regions import Frame, ViewConfig
from ..core.trajectory import Trajectory
from ..data.traces import TraceBuilder
from ..data.trl import _prompt
from .trl_env import judge_box
from .trl_rewards import completion_text

TOOL_OPEN = "\n<|im_start|>user\n<tool_response>\n"  # after the model's <|im_end|>, before the first result
TOOL_NEXT = "\n</tool_response>\n<tool_response>\n"  # between two results of one turn
TOOL_CLOSE = "\n</tool_response><|im_end|>\n<|im_start|>assistant\n"  # after the last result: the model's turn


def tool_trajectory(prompt: str | Sequence[dict], completion: Sequence[dict], image: Image.Image, view: ViewConfig,
                    coords: str = "absolute", **traj_kw) -> Trajectory:
    """One TRL tool-calling completion as a Trajectory.

    prompt: the rendered prompt text (holding one `<|vision_start|>...<|vision_end|>`) or its messages;
    image: the original main image (crops' boxes are judged in its model-input frame under `view`)."""
    b = TraceBuilder(image, view)
    head, tail = _prompt(prompt)
    b.start(head, tail, **traj_kw)
    frame = Frame.of(b.size, view)
    messages = list(completion)
    i = 0
    while i < len(messages):
        m = messages[i]
        i += 1
        if m.get("role") != "assistant":
            raise ValueError(f"message {i - 1} of the completion is a {m.get('role')!r} message where an assistant "
                             "turn was expected (TRL completions alternate assistant turns and tool results)")
        results = []
        while i < len(messages) and messages[i].get("role") == "tool":
            results.append(messages[i])
            i += 1
        text = completion_text([m], calls="tool_call")
        b.model(text + "<|im_end|>")
        calls = [c.get("function", c) for c in m.get("tool_calls") or []]
        pos = 0
        for k, fn in enumerate(calls):
            args = fn.get("arguments")
            raw = args if isinstance(args, str) else json.dumps(args)
            start = text.find('"arguments": ' + raw, pos) + len('"arguments": ')
            pos = start + len(raw)
            before = TOOL_OPEN if k == 0 else TOOL_NEXT
            result = results[k]["content"] if k < len(results) else "(not run: TRL drops a tool result that would pass max_completion_length)"
            try:
                bbox = (json.loads(args) if isinstance(args, str) else args or {}).get("bbox_2d")
            except (ValueError, AttributeError):
                bbox = None
            call = judge_box(bbox, frame, view, coords)
            crop = next((p.get("image") for p in result if isinstance(p, dict) and p.get("type") == "image"),
                        None) if isinstance(result, list) else None
            if call.ok and crop is not None:
                x1, y1, x2, y2 = frame.to_orig(call.box)
                b.crop((start, pos), (x1, y1, x2 + 1, y2 + 1), crop, before=before, box_input=_clip(call.box, frame))
            else:
                note = result if isinstance(result, str) else str(result)
                b.refused((start, pos), call.message if not call.ok else note, note=before + note,
                          box=call.box, verdict=call.verdict)
        if calls:
            b.env(TOOL_CLOSE, tag="tool")
    return b.build()


def _clip(box, frame: Frame):
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(frame.input_w), box[2]), min(float(frame.input_h), box[3]))


class TrajectoryRecorder:
    """A TRL reward function (give it weight 0) that keeps every batch's rollouts as Trajectories.

    `processor` renders each prompt with the environment's tool as TRL did; `trajectories` holds the last
    batch, `history` the last `keep` batches; `path` (a .jsonl) receives every batch, without pixels, as
    `r3lab eval` writes trajectories (so `r3lab dashboard` reads a TRL run). Its value is the number of
    crops each rollout executed."""

    __name__ = "crops"

    def __init__(self, processor, view: ViewConfig, coords: str = "absolute", keep: int = 50,
                 path: str | os.PathLike | None = None):
        self.processor, self.view, self.coords, self.keep = processor, view, coords, keep
        self.path = Path(path) if path else None
        self.trajectories: list[Trajectory] = []
        self.history: list[list[Trajectory]] = []

    def __call__(self, prompts, completions, environments=None, answers=None, gt_boxes=None, family=None,
                 sample_id=None, question=None, trainer_state=None, **_):
        if environments is None:
            raise ValueError("TrajectoryRecorder needs TRL's environments: train with "
                             "environment_factory=CropEnvironment.factory(...)")
        out = []
        for n, (prompt, completion, env) in enumerate(zip(prompts, completions, environments)):
            text = self.processor.apply_chat_template(prompt, tools=[env.image_zoom_in_tool], tokenize=False,
                                                      add_generation_prompt=True)
            meta = {"format": "trl", "step": int(getattr(trainer_state, "global_step", 0) or 0), "row": n}
            out.append(tool_trajectory(
                text, completion, env.image, self.view, self.coords, question=question[n] if question else _question(prompt),
                answers=list(answers[n]) if answers else [], gt_boxes=[tuple(b) for b in (gt_boxes or [[]] * len(prompts))[n]],
                family=family[n] if family else "", sample_id=str(sample_id[n]) if sample_id else "", meta=meta))
        self.trajectories = out
        self.history = (self.history + [out])[-self.keep:]
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
