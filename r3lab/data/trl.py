"""TRL completions as r3lab `Trajectory`s: the one place a (prompt, completion, image) triple becomes one.

Kept minimal on purpose and shared: the TRL integration (its trainer callbacks and reward functions)
builds its trajectories with `trl_trajectory`, and `import_trl_completions` reads what TRL logged.

The format is the completions table TRL's `GRPOTrainer` logs (huggingface/trl `trl/trainer/grpo_trainer.py`,
`log_completions`: columns `step`, `prompt`, `completion`, one column per reward function, `advantage`),
as JSONL rows or as the table's JSON export (`{"columns": [...], "data": [[...], ...]}`), plus an
`image` column with the main image's path (TRL does not log images) and, optionally, `answer` (or
`solution`). A prompt is the chat-templated text holding one `<|vision_start|>...<|vision_end|>`
(or TRL's conversational list of messages); a completion is text (or a list of assistant messages).
VLM-R3-style crop calls `{"bbox_2d": [x1, y1, x2, y2]}` in the completion are in the model-input frame
of `view`: each valid one ends a `model_text` piece and is followed by its zoomed crop, cut from the
image by the official rule, which is what the model saw when it wrote on (the official R-GRPO trainer,
justgogorunrun/VLM-R3 `src/r1-v/src/open_r1/trainer/vllm_rgrpo_trainer.py`, logs the segments joined).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..core.crop_calls import find_crop_calls
from ..core.prompt import PromptConfig
from ..core.regions import ViewConfig
from ..core.trajectory import CropEvent, MODEL, Piece, Trajectory
from .formats import ImportReport, _bad
from .traces import TraceBuilder, _answers, _under, open_image

_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
_VISION = re.compile(r"<\|vision_start\|>(?:<\|image_pad\|>)*<\|vision_end\|>")
SKIP = {"step", "prompt", "completion", "image", "answer", "solution", "advantage", "id"}


def trl_trajectory(prompt: str | Sequence[dict], completion: str | Sequence[dict], image: Image.Image | None,
                   view: ViewConfig, size: tuple[int, int] | None = None, **traj_kw) -> Trajectory:
    """One TRL completion as a Trajectory: the prompt around the main image, then the completion split at
    each valid crop call, the zoomed crop after it (cut now when the image is given, else by `tokenize`)."""
    b = TraceBuilder(image, view, size)
    head, tail = _prompt(prompt)
    b.start(head, tail, **traj_kw)
    text = completion if isinstance(completion, str) else "".join(str(m.get("content", "")) for m in completion)
    pos = 0
    for call in find_crop_calls(text, b.frame, view.max_aspect):
        if not call.ok:
            continue
        b.model(text[pos:call.end])
        span = (call.start - pos, call.end - pos)
        box = b.frame.to_orig(call.box)
        if image is not None:
            b.traj.add_crop(call.box, view)
            b.traj.events.append(CropEvent(_shift(call, pos), len(b.traj.pieces) - 2, len(b.traj.pieces) - 1))
        else:
            b.crop(span, (box[0], box[1], box[2] + 1, box[3] + 1))
        pos = call.end
    if pos < len(text) or pos == 0:
        b.model(text[pos:])
    traj = b.build()
    for k, p in enumerate(traj.pieces):  # refused calls (malformed, outside, ...) stay in the text, recorded
        if p.kind == MODEL:
            for c in find_crop_calls(p.text, b.frame, view.max_aspect):
                if not c.ok:
                    traj.events.append(CropEvent(c, k))
    traj.events.sort(key=lambda e: (e.piece, e.call.start))
    return traj


def import_trl_completions(path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                           view: ViewConfig | None = None, load_images: bool = True, errors: str = "raise"
                           ) -> tuple[list[Trajectory], ImportReport]:
    """TRL's logged completions (JSONL rows, or the table's {"columns", "data"} JSON) as Trajectories.

    view: the frame the completions' crop calls are in (default: r3lab's `ViewConfig()`).
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    view = view or ViewConfig()
    out, rep = [], ImportReport(str(path))
    for n, rec in _rows(path, rep, errors):
        try:
            for key in ("prompt", "completion", "image"):
                if key not in rec:
                    raise ValueError(f"a row needs {key!r} (TRL logs prompt and completion; add the image path)")
            image, size = open_image(_under(root, str(rec["image"])), load_images)
            rewards = {k: float(v) for k, v in rec.items()
                       if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)}
            meta = {"format": "trl-completions", "source": str(path), "line": n, "system_rewards": rewards}
            if rec.get("step") not in (None, ""):
                meta["step"] = int(float(rec["step"]))  # TRL logs the step as a string
            if isinstance(rec.get("advantage"), (int, float)):
                meta["advantage"] = float(rec["advantage"])
            out.append(trl_trajectory(rec["prompt"], rec["completion"], image, view, size, answers=_answers(rec),
                                      sample_id=str(rec.get("id", f"{path.stem}-{n:06d}")), meta=meta))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            _bad(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


def _rows(path: Path, rep: ImportReport, errors: str):
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    text = path.read_text()
    table = _table(text)
    if table is not None:
        cols, data = table
        rep.unit = "record"
        for n, row in enumerate(data, 1):
            if isinstance(row, list) and len(row) == len(cols):
                yield n, dict(zip(cols, row))
            else:
                _bad(rep, errors, path, n, ValueError(f"a data row must hold {len(cols)} values"))
        return
    from .dataset import json_lines

    for n, rec in json_lines(text.splitlines()):
        if isinstance(rec, ValueError):
            _bad(rep, errors, path, n, rec)
        else:
            yield n, rec


def _table(text: str):
    """(columns, data) of a table export `{"columns": [...], "data": [[...], ...]}`, else None (JSONL)."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None  # several lines: JSONL
    if isinstance(obj, dict) and isinstance(obj.get("columns"), list) and isinstance(obj.get("data"), list):
        return obj["columns"], obj["data"]
    return None


def _prompt(prompt) -> tuple[str, str]:
    if not isinstance(prompt, str):  # conversational: render it like the Qwen chat template
        prompt = _render(prompt)
    m = _VISION.search(prompt)
    if m is None:
        return PromptConfig().head_tail(prompt)
    return prompt[:m.start()], prompt[m.end():]


def _render(messages: Sequence[dict]) -> str:
    out = "" if messages and messages[0].get("role") == "system" else \
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    for m in messages:
        c = m.get("content", "")
        if not isinstance(c, str):
            c = "".join(_IMAGE if p.get("type") == "image" else str(p.get("text", "")) for p in c if isinstance(p, dict))
        out += f"<|im_start|>{m.get('role', 'user')}\n{c}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def _shift(call, pos: int):
    from dataclasses import replace

    return replace(call, start=call.start - pos, end=call.end - pos)
