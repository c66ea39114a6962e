"""Other systems' trajectories as r3lab `Trajectory`s: the official VLM-R3 evaluation and DeepEyes' evaluation.

Every importer goes through `TraceBuilder`, which lays a foreign episode out exactly like an r3lab
one (`env_text` prompt head, the main image, the rest of the prompt, then `model_text` pieces with a
`CropEvent` and a crop `image` piece after every crop the system executed, `env_text` for what its
environment wrote), so `explain_crops`, `plot_trajectory`, `figure_trajectory`, `step_player`,
`export_html`, `rollout_metrics` and the crop dashboard read imported runs like r3lab's own.

Boxes. Each system writes its boxes in its own frame; the importer turns them into original pixels
(`ImageInfo.box_orig`, inclusive, as r3lab stores it) and into this trajectory's model-input frame
(`ImageInfo.box_input` and `CropEvent.call.box`), whose size comes from `view` (by default the view
the system itself used, so the boxes read as the model wrote them; pass `policy.view` to explain
an imported run with another model). `CropEvent.call.raw` keeps the text the model wrote.

Formats (the files each follows, by repository and path):

- **VLM-R3 evaluation** (`import_vlmr3_eval`; justgogorunrun/VLM-R3 `src/model/r3_vllm.py`,
  `AgentVLMVLLM.process`, which returns `response_list, img_crop_list, ...`): a JSON list or JSONL of
  `{"image_path", "question", "response_list": [segment, ...], "img_crop_list": [crop file, ...]}`
  with optional `"answer"` (or `"ground_truth"`, `"solution"`: "X" or "<answer>X</answer>"), `"category"`,
  `"id"`. Segment k ends with the crop call `{"bbox_2d": [x1, y1, x2, y2]}` in the model-input frame of
  the evaluation's view (`OFFICIAL_EVAL_VIEW`, `src/eval/test_vstar_r3.py`: 32..8192 x 28 x 28 pixels,
  crops 32..4096 x 28 x 28), the loop having appended "]}\\n" that the stop string cut, or
  "Invalid operation!" where the crop failed; crop k is the k-th executed crop. Crop files that no
  longer exist (the official loop writes them into a scratch folder it empties) are cut again from
  the main image by the official rule.
- **DeepEyes evaluation** (`import_deepeyes_eval`; Visual-Agent/DeepEyes `eval/eval_vstar.py`, `process`):
  JSONL of `{"image", "question", "answer", "answer_choice", "pred_ans", "pred_output", "status"}`;
  `pred_output` is the chat: system, user [image, text], then assistant turns and, after each
  `<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [...]}}</tool_call>`, a user turn
  holding the crop (blanked in the file) wrapped in `<tool_response>...</tool_response>`. Boxes are
  original pixels; crops are cut again by DeepEyes' rule (crop, then `smart_resize` to multiples of
  28 within 4..16384 x 28 x 28 pixels). Where the V* annotation JSON lies beside an image, its target
  boxes become the trajectory's ground truth (so crop IoU is measured).

Bad records raise an error naming the file and line (record, for a JSON list), or are collected
with `errors="report"`, as `r3lab.data.formats` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from ..core.crop_calls import Verdict, find_crop_calls
from ..core.files import read_text
from ..core.prompt import IM_END, PromptConfig
from ..core.records import ImportReport
from ..core.regions import Frame, ViewConfig, clip_box, smart_resize
from ..core.settings import short
from ..core.trajectory import Trajectory
from .builder import (
    TOOL_CALL,
    TraceBuilder,
    answers_of,
    default_head_tail,
    import_records,
    loads_call,
    open_image,
    path_under,
)

OFFICIAL_EVAL_VIEW = ViewConfig(
    min_pixels=32 * 28 * 28, max_pixels=8192 * 28 * 28, crop_min_pixels=32 * 28 * 28, crop_max_pixels=4096 * 28 * 28
)
DEEPEYES_VIEW = ViewConfig(
    min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28, crop_min_pixels=4 * 28 * 28, crop_max_pixels=16384 * 28 * 28
)


# -- the official VLM-R3 evaluation ----------------------------------------------------------------
def import_vlmr3_eval(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    view: ViewConfig | None = None,
    system_view: ViewConfig = OFFICIAL_EVAL_VIEW,
    prompt: PromptConfig | None = None,
    load_images: bool = True,
    errors: str = "raise",
) -> tuple[list[Trajectory], ImportReport]:
    """VLM-R3 evaluation outputs (`response_list` with `img_crop_list`) as Trajectories.

    system_view: the pixel budgets the evaluation ran with (its boxes are in that model-input frame).
    view: the frame of the imported trajectories (default: `system_view`).
    """
    root = Path(image_root) if image_root else Path(path).parent

    def one(rec, n):
        for key, typ in (("question", str), ("response_list", list)):
            if not isinstance(rec.get(key), typ):
                raise ValueError(f"field {short(key)} must be a {typ.__name__}")
        img = rec.get("image_path", rec.get("image"))
        if not isinstance(img, str):
            raise ValueError("a record needs 'image_path' (the main image)")
        image, size = open_image(path_under(root, img), load_images)
        b = TraceBuilder(image, view or system_view, size)
        b.start(
            *default_head_tail(rec["question"], prompt),
            question=rec["question"],
            answers=answers_of(rec),
            family=str(rec.get("category", "")),
            sample_id=str(rec.get("id", f"{Path(path).stem}-{n:06d}")),
            meta={"format": "vlm-r3-eval", "source": str(path), "line": n},
        )
        sys_frame = Frame.of(size, system_view)
        crops = [c for c in rec.get("img_crop_list") or [] if isinstance(c, str)]
        segs = rec["response_list"]
        for k, seg in enumerate(segs):
            if not isinstance(seg, str):
                raise ValueError(f"response_list[{k}] is not a string")
            invalid = seg.endswith("Invalid operation!")
            text = seg[: -len("Invalid operation!")] if invalid else seg
            last = k == len(segs) - 1
            if last and "<answer>" in text:
                text = text.rstrip("\n") + IM_END
            b.model(text)
            calls = [c for c in find_crop_calls(text, sys_frame, system_view.max_aspect) if c.box is not None]
            if not calls or "bbox_2d" not in text or (last and not invalid and "<answer>" in text):
                continue
            call = calls[-1]
            if invalid or not call.ok:  # "Invalid operation!": the official loop could not read the box
                why = call.message if not call.ok else "the official loop could not crop it"
                b.refused(
                    (call.start, call.end),
                    why,
                    "Invalid operation!" if invalid else "",
                    verdict=call.verdict if not call.ok else Verdict.NOT_JSON,
                )
                continue
            box = clip_box(call.box, *sys_frame.input_size)
            x1, y1, x2, y2 = sys_frame.to_orig(box)
            n_done = sum(e.ok for e in b.traj.events)
            pix = _crop_file(root, crops[n_done]) if n_done < len(crops) else None
            b.crop(
                (call.start, call.end),
                (x1, y1, x2 + 1, y2 + 1),
                pix,
                box_input=box if (view or system_view) == system_view else None,
            )
        return b.build()

    return import_records(path, errors, one)


def _crop_file(root: Path, rel: str) -> Image.Image | None:
    p = path_under(root, rel)
    if not p.is_file():
        return None  # the official loop's scratch folder was emptied: cut again when tokenized
    with Image.open(p) as im:
        return im.convert("RGB")


# -- DeepEyes' evaluation --------------------------------------------------------------------------
def import_deepeyes_eval(
    path: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    view: ViewConfig | None = None,
    load_images: bool = True,
    errors: str = "raise",
) -> tuple[list[Trajectory], ImportReport]:
    """DeepEyes evaluation outputs (`eval/eval_vstar.py` JSONL with `pred_output`) as Trajectories.

    image_root: the folder the records' `image` names are in (the V* test folder the run read).
    view: the frame of the imported trajectories (default: DeepEyes' own, `DEEPEYES_VIEW`).
    """
    root = Path(image_root) if image_root else Path(path).parent

    def one(rec, n):
        msgs = rec.get("pred_output")
        if not isinstance(msgs, list) or len(msgs) < 2 or not all(isinstance(m, dict) for m in msgs):
            raise ValueError("'pred_output' must be the chat: a list of {role, content} messages")
        if not isinstance(rec.get("image"), str):
            raise ValueError("a record needs 'image' (the file name of the main image)")
        image, size = open_image(path_under(root, rec["image"]), load_images)
        gt = _vstar_boxes(path_under(root, str(Path(rec["image"]).with_suffix(".json"))))
        system = msgs[0]["content"] if msgs[0].get("role") == "system" else "You are a helpful assistant."
        user = next((m for m in msgs if m.get("role") == "user"), None)
        if user is None:
            raise ValueError("'pred_output' holds no user turn (the question and image)")
        text = _text_of(user["content"])
        b = TraceBuilder(image, view or DEEPEYES_VIEW, size)
        head = f"<|im_start|>system\n{system}{IM_END}\n<|im_start|>user\n"
        b.start(
            head,
            f"{text}{IM_END}\n<|im_start|>assistant\n",
            question=str(rec.get("question", text)),
            answers=answers_of(rec),
            gt_boxes=gt,
            family=str(rec.get("category", "")),
            sample_id=str(rec.get("id", f"{Path(path).stem}-{n:06d}")),
            meta={"format": "deepeyes-eval", "source": str(path), "line": n, "status": rec.get("status")},
        )
        turns = msgs[msgs.index(user) + 1 :]
        opened = False  # the last assistant turn's crop opened a <tool_response>
        for k, m in enumerate(turns):
            if m.get("role") == "assistant":
                content = _text_of(m.get("content", ""))
                b.model(content + IM_END)
                follow = turns[k + 1] if k + 1 < len(turns) else None
                opened = _deepeyes_call(b, content, follow, image)
            elif m.get("role") == "user":
                head = "" if opened else "\n<|im_start|>user\n<tool_response>"
                b.env(
                    f"{head}{_text_of(m.get('content', ''))}</tool_response>{IM_END}\n<|im_start|>assistant\n",
                    tag="tool",
                )
                opened = False
        return b.build()

    return import_records(path, errors, one)


def _deepeyes_call(b: TraceBuilder, content: str, follow: dict | None, image) -> bool:
    """The tool call of one assistant turn: executed (its crop opens the next user turn) or refused."""
    m = list(TOOL_CALL.finditer(content))
    if not m:
        return False
    span = m[0].span()
    try:
        call = loads_call(m[0].group(1).strip())
        box = [float(v) for v in call["arguments"]["bbox_2d"]]
        if len(box) != 4:
            raise ValueError("bbox_2d needs four numbers")
    except (ValueError, KeyError, TypeError, SyntaxError) as e:
        b.refused(span, f"the tool call could not be read ({e})")
        return False
    if follow is None or follow.get("role") != "user":
        b.refused(span, "no tool response followed (the episode ended)")
        return False
    pix = _deepeyes_crop(image, box) if image is not None else None
    return b.crop(span, tuple(box), pix, before="\n<|im_start|>user\n<tool_response>")


def _vstar_boxes(path: Path) -> list[tuple]:
    """The target boxes of a V* image (its JSON beside it, `bbox` as [x, y, w, h]) as x1 y1 x2 y2; [] without one."""
    if not path.is_file():
        return []
    try:
        return [
            (float(x), float(y), float(x) + float(w), float(y) + float(h))
            for x, y, w, h in json.loads(read_text(path))["bbox"]
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} (the image's V* annotation) must hold 'bbox', a list of [x, y, w, h] ({e})") from None


def _deepeyes_crop(image: Image.Image, box) -> Image.Image:
    """DeepEyes' crop: the original's pixels in the box, resized to multiples of 28 within its pixel bounds."""
    left, top, right, bottom = box
    crop = image.crop((left, top, right, bottom))
    h, w = smart_resize(
        max(1, int(bottom - top)),
        max(1, int(right - left)),
        28,
        DEEPEYES_VIEW.crop_min_pixels,
        DEEPEYES_VIEW.crop_max_pixels,
    )
    return crop.resize((w, h), Image.BICUBIC)


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
