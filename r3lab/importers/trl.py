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

Tool-calling completions (TRL's GRPOTrainer with `environment_factory`; r3lab's `CropEnvironment`) are
lists of messages: assistant turns with `tool_calls` and `tool` results (an image part for an executed
crop, text for a refused box). `tool_trajectory` lays each assistant turn out as one `model_text` piece,
written as Qwen3-VL's chat template writes it and ending with the `<|im_end|>` the model sampled; the
template's tool-response wrapper is `env_text`; an executed zoom is a `CropEvent` and a crop piece; a
refused box a `CropEvent` with the text answered. Each box is judged again by `judge_box`, the rule the
environment applied (boxes in model-input pixels, or `coords="relative"`: thousandths of its sides).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..core.crop_calls import find_crop_calls, judge_box
from ..core.files import read_text
from ..core.prompt import PromptConfig
from ..core.records import ImportReport, bad_record, json_lines
from ..core.regions import Frame, ViewConfig, clip_box
from ..core.settings import short
from ..core.trajectory import MODEL, CropEvent, Trajectory
from .builder import TraceBuilder, answers_of, open_image, path_under

_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
_VISION = re.compile(r"<\|vision_start\|>(?:<\|image_pad\|>)*<\|vision_end\|>")
SKIP = {"step", "prompt", "completion", "image", "answer", "solution", "advantage", "id"}


def trl_trajectory(
    prompt: str | Sequence[dict],
    completion: str | Sequence[dict],
    image: Image.Image | None,
    view: ViewConfig,
    size: tuple[int, int] | None = None,
    **traj_kw,
) -> Trajectory:
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
        b.model(text[pos : call.end])
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


def import_trl_completions(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    view: ViewConfig | None = None,
    load_images: bool = True,
    errors: str = "raise",
    coords: str = "absolute",
) -> tuple[list[Trajectory], ImportReport]:
    """TRL's logged completions (JSONL rows, or the table's {"columns", "data"} JSON) as Trajectories.

    view: the frame the completions' crop calls are in (default: r3lab's `ViewConfig()`). A completion
    whose messages hold `tool_calls` is read by `tool_trajectory` (boxes in `coords`; TRL logs the tool
    results' images as bare `{"type": "image"}` blocks, so executed crops are cut again from the image).
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    view = view or ViewConfig()
    out, rep = [], ImportReport(str(path))
    for n, rec in _rows(path, rep, errors):
        try:
            for key in ("prompt", "completion", "image"):
                if key not in rec:
                    raise ValueError(f"a row needs {short(key)} (TRL logs prompt and completion; add the image path)")
            image, size = open_image(path_under(root, str(rec["image"])), load_images)
            rewards = {
                k: float(v)
                for k, v in rec.items()
                if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            meta = {"format": "trl-completions", "source": str(path), "line": n, "system_rewards": rewards}
            if rec.get("step") not in (None, ""):
                meta["step"] = int(float(rec["step"]))  # TRL logs the step as a string
            if isinstance(rec.get("advantage"), (int, float)):
                meta["advantage"] = float(rec["advantage"])
            kw = dict(answers=answers_of(rec), sample_id=str(rec.get("id", f"{path.stem}-{n:06d}")), meta=meta)
            comp = rec["completion"]
            if not isinstance(comp, str) and any(isinstance(m, dict) and m.get("tool_calls") for m in comp):
                out.append(tool_trajectory(rec["prompt"], comp, image, view, coords, size, **kw))
            else:
                out.append(trl_trajectory(rec["prompt"], comp, image, view, size, **kw))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            bad_record(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


def _rows(path: Path, rep: ImportReport, errors: str):
    text = read_text(path)  # a byte that is not UTF-8: the file and line named
    table = _table(text)
    if table is not None:
        cols, data = table
        rep.unit = "record"
        for n, row in enumerate(data, 1):
            if isinstance(row, list) and len(row) == len(cols):
                yield n, dict(zip(cols, row))
            else:
                bad_record(rep, errors, path, n, ValueError(f"a data row must hold {len(cols)} values"))
        return
    for n, rec in json_lines(text.splitlines()):
        if isinstance(rec, ValueError):
            bad_record(rep, errors, path, n, rec)
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
    return prompt[: m.start()], prompt[m.end() :]


def _render(messages: Sequence[dict]) -> str:
    out = (
        ""
        if messages and messages[0].get("role") == "system"
        else "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    )
    for m in messages:
        c = m.get("content", "")
        if not isinstance(c, str):
            c = "".join(
                _IMAGE if p.get("type") == "image" else str(p.get("text", "")) for p in c if isinstance(p, dict)
            )
        out += f"<|im_start|>{m.get('role', 'user')}\n{c}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def _shift(call, pos: int):
    from dataclasses import replace

    return replace(call, start=call.start - pos, end=call.end - pos)


# -- tool-calling completions (TRL's GRPOTrainer with tools, e.g. r3lab.integrations.CropEnvironment) ------
# the chat template's tool-response turn around the results of one assistant turn (its <|im_end|> is the model's)
RESPONSE_OPEN = "\n<|im_start|>user\n<tool_response>\n"  # after the model's <|im_end|>, before the first result
RESPONSE_NEXT = "\n</tool_response>\n<tool_response>\n"  # between two results of one turn
RESPONSE_CLOSE = "\n</tool_response><|im_end|>\n<|im_start|>assistant\n"  # after the last result: the model's turn
NOT_RUN = "(not run: TRL drops a tool result that would pass max_completion_length)"


def completion_text(completion, calls: str = "inline") -> str:
    """A completion as one text: plain text as is; messages as the assistant wrote them (reasoning, content,
    tool calls), tool results left out. `calls="inline"` writes each tool call as its arguments, r3lab's
    inline crop call `{"bbox_2d": [...]}` (what `region_json` and the length terms look for); `"tool_call"`
    as Qwen3-VL's `<tool_call>` block, the text the model wrote."""
    if isinstance(completion, str):
        return completion
    out = []
    for m in completion:
        if m.get("role") != "assistant":
            continue
        text = ""
        if m.get("reasoning_content"):
            text += f"<think>{m['reasoning_content']}</think>"
        content = m.get("content") or ""
        text += (
            content
            if isinstance(content, str)
            else "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        )
        for k, call in enumerate(m.get("tool_calls") or []):
            fn = call.get("function", call)
            args = fn.get("arguments")
            args = args if isinstance(args, str) else json.dumps(args)
            if calls == "inline":
                text += " " + args
            else:  # as Qwen3-VL's chat template renders it
                text += (
                    ("\n" if text or k else "")
                    + '<tool_call>\n{"name": "'
                    + str(fn.get("name"))
                    + '", "arguments": '
                    + args
                    + "}\n</tool_call>"
                )
        out.append(text)
    return "".join(out)


def tool_trajectory(
    prompt: str | Sequence[dict],
    completion: Sequence[dict],
    image: Image.Image | None,
    view: ViewConfig,
    coords: str = "absolute",
    size: tuple[int, int] | None = None,
    **traj_kw,
) -> Trajectory:
    """One TRL tool-calling completion as a Trajectory.

    prompt: the rendered prompt text (holding one `<|vision_start|>...<|vision_end|>`) or its messages;
    image: the original main image (crops' boxes are judged in its model-input frame under `view`), or None
    with `size` its (w, h) (metrics need no pixels)."""
    b = TraceBuilder(image, view, size)
    head, tail = _prompt(prompt)
    b.start(head, tail, **traj_kw)
    frame = Frame.of(b.size, view)
    messages = list(completion)
    i = 0
    while i < len(messages):
        m = messages[i]
        i += 1
        if m.get("role") != "assistant":
            raise ValueError(
                f"message {i - 1} of the completion is a {short(m.get('role'))} message where an "
                f"assistant "
                "turn was expected (TRL completions alternate assistant turns and tool results)"
            )
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
            before = RESPONSE_OPEN if k == 0 else RESPONSE_NEXT
            result = results[k]["content"] if k < len(results) else NOT_RUN
            try:
                bbox = (json.loads(args) if isinstance(args, str) else args or {}).get("bbox_2d")
            except (ValueError, AttributeError):
                bbox = None
            call = judge_box(bbox, frame, view, coords)
            parts = (
                [p for p in result if isinstance(p, dict) and p.get("type") == "image"]
                if isinstance(result, list)
                else []
            )
            if call.ok and parts:  # an image answered: executed (its pixels, or cut again when the log dropped them)
                x1, y1, x2, y2 = frame.to_orig(call.box)
                b.crop(
                    (start, pos),
                    (x1, y1, x2 + 1, y2 + 1),
                    parts[0].get("image"),
                    before=before,
                    box_input=clip_box(call.box, frame.input_w, frame.input_h),
                )
            else:
                note = result if isinstance(result, str) else str(result)
                b.refused(
                    (start, pos),
                    call.message if not call.ok else note,
                    note=before + note,
                    box=call.box,
                    verdict=call.verdict,
                )
        if calls:
            b.env(RESPONSE_CLOSE, tag="tool")
    return b.build()
