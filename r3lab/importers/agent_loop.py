"""verl agent-loop outputs (DeepEyes' RL rollouts) as r3lab `Trajectory`s: token ids, `response_mask`, tool images.

verl's multi-turn rollout returns one `AgentLoopOutput` per trajectory (volcengine/verl
`verl/experimental/agent_loop/agent_loop.py`): `prompt_ids`, `response_ids` (the model's tokens *and*
the tool responses' tokens), `response_mask` (1 on tokens the model generated, 0 on tool-response
tokens), optional `response_logprobs`, `multi_modal_data` ({"image": [...]}: the prompt's image, then
each image a tool returned, in order), `reward_score`, `num_turns` and `extra_fields`. DeepEyes' own
loop (Visual-Agent/DeepEyes `verl/workers/agent/parallel_env.py`) keeps the same layout under the
name `action_mask`. A zoom-in tool call is `<tool_call>{"name": "image_zoom_in_tool", "arguments":
{"bbox_2d": [x1, y1, x2, y2]}}</tool_call>` with the box in absolute pixels of the tool's image
(volcengine/verl `verl/tools/image_zoom_in_tool.py`); Qwen3-VL variants write 0-1000 coordinates
(`box_format="xyxy_1000"`). The crop comes back inside the next tool-response tokens as one
`<|vision_start|><|image_pad|>...<|vision_end|>` run.

A file is JSONL, one `AgentLoopOutput.model_dump()` per line, with the images as file paths
(relative to `image_root`) or `data:image/...;base64,` URIs, and optionally `"step"` (the training
step; also read from `extra_fields["global_steps"]`), `"ground_truth"` and `"id"`. Decoding needs the
tokenizer of the model that produced the ids (`tokenizer=`: a Hugging Face tokenizer or a Policy).

In the Trajectory, the model's runs become `model_text` pieces with their ids and log-probs kept
verbatim (`keep_ids=False` drops them, to re-tokenise with another model), the tool responses
become `env_text` pieces around the crop `image` pieces, and each executed zoom-in is a `CropEvent`.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

from PIL import Image

from ..core.records import ImportReport
from ..core.regions import ViewConfig
from ..core.settings import short
from ..core.trajectory import Trajectory
from .builder import TOOL_CALL, TraceBuilder, import_records, loads_call, open_image, path_under

VISION = ("<|vision_start|>", "<|vision_end|>")


def import_agent_loop(
    path: str | os.PathLike,
    tokenizer,
    image_root: str | os.PathLike | None = None,
    view: ViewConfig | None = None,
    box_format: str = "xyxy",
    keep_ids: bool = True,
    load_images: bool = True,
    errors: str = "raise",
) -> tuple[list[Trajectory], ImportReport]:
    """verl `AgentLoopOutput` records (JSONL) as Trajectories.

    tokenizer: the tokenizer of the model that wrote the ids (a Policy works too).
    view: the frame of the imported trajectories (default: r3lab's `ViewConfig()` with Qwen's 28-px factor).
    box_format: "xyxy" (absolute pixels, verl's ImageZoomInTool) or "xyxy_1000" (0-1000, Qwen3-VL variants).
    """
    if box_format not in ("xyxy", "xyxy_1000"):
        raise ValueError(f"box_format must be 'xyxy' or 'xyxy_1000', got {short(box_format)}")
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    v_start, v_end = (tok.convert_tokens_to_ids(t) for t in VISION)
    root = Path(image_root) if image_root else Path(path).parent
    view = view or ViewConfig()

    def one(rec, n):
        for key in ("prompt_ids", "response_ids", "response_mask"):
            if not isinstance(rec.get(key), list) or not all(isinstance(i, int) for i in rec[key]):
                raise ValueError(f"field {short(key)} must be a list of integers")
        resp, mask = rec["response_ids"], rec["response_mask"]
        if len(resp) != len(mask) or not set(mask) <= {0, 1}:
            raise ValueError(f"response_mask must hold one 0/1 per response token ({len(mask)} for {len(resp)} ids)")
        lps = rec.get("response_logprobs")
        if lps is not None and len(lps) != len(resp):
            raise ValueError(f"response_logprobs has {len(lps)} values for {len(resp)} response ids")
        refs = ((rec.get("multi_modal_data") or {}).get("image")) or []
        if not refs:
            raise ValueError("multi_modal_data.image must list the prompt's image (and the tools' images)")
        image, size = _image(refs[0], root, load_images)
        runs = _vision_runs(rec["prompt_ids"], v_start, v_end)
        if not runs:
            raise ValueError("the prompt ids hold no <|vision_start|> ... <|vision_end|> image")
        s, e = runs[0]
        pids = rec["prompt_ids"]
        ex = rec.get("extra_fields") or {}
        b = TraceBuilder(image, view, size)
        tail = _dec(tok, pids[e + 1 :])
        b.start(
            _dec(tok, pids[:s]),
            tail,
            question=str(rec.get("question") or _question(tail)),
            answers=_truth(rec, ex),
            sample_id=str(rec.get("id", f"{Path(path).stem}-{n:06d}")),
            meta=_meta(rec, ex, path, n),
        )
        if keep_ids:
            b.traj.pieces[0].ids, b.traj.pieces[2].ids = list(pids[:s]), list(pids[e + 1 :])
        k_img = 1
        for a, z, m in _mask_runs(mask):
            ids = resp[a:z]
            if m == 1:
                b.model(
                    _dec(tok, ids),
                    list(ids) if keep_ids else None,
                    [float(x) for x in lps[a:z]] if lps is not None and keep_ids else None,
                )
                continue
            k_img = _tool_response(b, tok, ids, v_start, v_end, refs, k_img, root, load_images, box_format, keep_ids)
        _close_open_calls(b)
        return b.build()

    return import_records(path, errors, one)


def _tool_response(b, tok, ids, v_start, v_end, refs, k_img, root, load, box_format, keep_ids) -> int:
    """One run of tool-response tokens: env text around each returned image, the i-th image being the crop
    of the preceding model turn's i-th tool call; returns the index of the next tool image."""
    model_k = max(i for i, p in enumerate(b.traj.pieces) if p.kind == "model_text")
    calls = list(TOOL_CALL.finditer(b.traj.pieces[model_k].text))
    done = sum(1 for ev in b.traj.events if ev.piece == model_k)
    pos = 0
    for s, e in _vision_runs(ids, v_start, v_end):
        if k_img >= len(refs):
            raise ValueError(f"the response holds more images than multi_modal_data.image lists ({len(refs)})")
        if done >= len(calls):
            raise ValueError(f"tool image {k_img} follows a model turn with no tool call left to answer")
        box = _box(calls[done].group(1), b.size, box_format)
        if box is None:
            raise ValueError(
                f"tool image {k_img} answers a tool call without a readable bbox_2d: "
                f"{calls[done].group(1).strip()[:80]!r}"
            )
        pix, _ = _image(refs[k_img], root, load)
        if not b.crop(calls[done].span(), box, pix, before=_dec(tok, ids[pos:s])):
            raise ValueError(f"tool image {k_img} answers the box {list(box)}, which lies outside the {b.size} image")
        if keep_ids and s > pos:
            b.traj.pieces[-2].ids = list(ids[pos:s])
        done, k_img, pos = done + 1, k_img + 1, e + 1
    rest = ids[pos:]
    if pos == 0 and done < len(calls):  # the tool answered without an image (an error message)
        b.refused(calls[done].span(), "the tool returned no image", note=_dec(tok, rest))
    else:
        b.env(_dec(tok, rest), "tool")
    if keep_ids and rest and b.traj.pieces[-1].kind == "env_text":
        b.traj.pieces[-1].ids = list(rest)
    return k_img


def _close_open_calls(b: TraceBuilder) -> None:
    """A tool call in the last model turn was never answered (the episode ended): a refused event."""
    last = b.traj.pieces[-1]
    if last.kind != "model_text":
        return
    k = len(b.traj.pieces) - 1
    for m in TOOL_CALL.finditer(last.text):
        if not any(ev.piece == k and ev.call.start == m.start() for ev in b.traj.events):
            b.refused(m.span(), "no tool response followed (the episode ended)")


def _box(raw: str, size, box_format: str):
    try:
        args = loads_call(raw.strip())["arguments"]
        vals = [float(v) for v in args.get("bbox_2d", args.get("bbox"))]
    except (ValueError, KeyError, TypeError, SyntaxError, AttributeError):
        return None
    if len(vals) != 4:
        return None
    if box_format == "xyxy_1000":
        w, h = size
        vals = [vals[0] * w / 1000, vals[1] * h / 1000, vals[2] * w / 1000, vals[3] * h / 1000]
    return tuple(vals)


def _vision_runs(ids, v_start: int, v_end: int) -> list[tuple[int, int]]:
    out, s = [], None
    for i, t in enumerate(ids):
        if t == v_start:
            s = i
        elif t == v_end and s is not None:
            out.append((s, i))
            s = None
    return out


def _mask_runs(mask):
    a = 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[a]:
            yield a, i, mask[a]
            a = i


def _dec(tok, ids) -> str:
    return tok.decode(list(ids), skip_special_tokens=False) if len(ids) else ""


def _image(ref, root: Path, load: bool):
    if not isinstance(ref, str):
        raise ValueError(f"an image must be a file path or a data URI, got {type(ref).__name__}")
    if ref.startswith("data:image"):
        with Image.open(io.BytesIO(base64.b64decode(ref.split(",", 1)[1]))) as im:
            return im.convert("RGB"), im.size
    return open_image(path_under(root, ref), load)


def _question(tail: str) -> str:
    return re.sub(r"<\|im_end\|>\s*<\|im_start\|>assistant\s*$", "", tail).strip()


def _truth(rec: dict, ex: dict) -> list[str]:
    gt = rec.get("ground_truth", ex.get("ground_truth"))
    if gt is None and isinstance(ex.get("reward_model"), dict):
        gt = ex["reward_model"].get("ground_truth")
    return [str(gt)] if gt not in (None, "") else []


def _meta(rec: dict, ex: dict, path, n: int) -> dict:
    meta = {"format": "verl-agent-loop", "source": str(path), "line": n, "num_turns": rec.get("num_turns")}
    step = rec.get("step", ex.get("global_steps", ex.get("step")))
    if step is not None:
        meta["step"] = int(step)
    rewards = {}
    if rec.get("reward_score") is not None:
        rewards["score"] = float(rec["reward_score"])
    for k, v in (ex.get("reward_extra_info") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rewards[k] = float(v)
    if rewards:
        meta["system_rewards"] = rewards
    return meta
