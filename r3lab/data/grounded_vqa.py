"""Grounded-VQA records (Visual-CoT style) turned into VLIR samples: JSONL or a JSON list of `{image, question,
answer, box}` with the evidence box in original pixels (or `box_format`'s frame), each box one crop of a sample whose
rationale is a template. Bad records are reported with their line or record number, as `r3lab.data.formats` does."""

from __future__ import annotations

import os
import random
from dataclasses import asdict
from pathlib import Path

from ..core.crop_calls import format_crop_call
from ..core.prompt import IM_END
from ..core.records import ImportReport, bad_record, read_records
from ..core.regions import ViewConfig, check_box
from ..core.settings import short
from ..core.trajectory import MODEL, Piece, crop_piece
from .formats import _file, _frame, _unique
from .sample import Sample, read_image
from .world import region_input_box

GROUNDED_OPEN = ["Let me zoom in on the relevant region.", "I need a closer look at this part of the image."]
GROUNDED_MORE = [" Let me also look here.", " And this part."]
GROUNDED_END = [" Now I can see it: {a}.", " It shows {a}."]


def import_grounded_vqa(
    path: str | os.PathLike,
    view: ViewConfig | None = None,
    image_root: str | os.PathLike | None = None,
    box_format: str = "xyxy",
    errors: str = "raise",
    seed: int = 0,
) -> tuple[list[Sample], ImportReport]:
    """Grounded-VQA records -> VLIR samples with one crop per evidence box and a template rationale.

    A record: `image` (or `image_path`), `question`, `answer` (a string, or a list of accepted
    answers), `box` (or `bbox`: one box; `bboxs`: several). box_format: "xyxy" or "xywh" in original
    pixels, "xyxy_norm" in 0..1, "xyxy_1000" in 0..1000 (Qwen2-VL's grounding convention).
    """
    if box_format not in _BOX_FORMATS:
        raise ValueError(f"box_format must be one of {sorted(_BOX_FORMATS)}, got {short(box_format)}")
    view = view or ViewConfig()
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    out, rep, ids = [], ImportReport(str(path)), {}
    for n, rec in read_records(path, rep, errors):
        try:
            out.append(_unique(_grounded(rec, n, path, root, view, box_format, seed), ids, n, rep))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            bad_record(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


_BOX_FORMATS = {
    "xyxy": lambda b, w, h: b,
    "xywh": lambda b, w, h: (b[0], b[1], b[0] + b[2], b[1] + b[3]),
    "xyxy_norm": lambda b, w, h: (b[0] * w, b[1] * h, b[2] * w, b[3] * h),
    "xyxy_1000": lambda b, w, h: (b[0] * w / 1000, b[1] * h / 1000, b[2] * w / 1000, b[3] * h / 1000),
}


def _grounded(rec, n, path, root, view, box_format, seed) -> Sample:
    img = rec.get("image", rec.get("image_path"))
    if not isinstance(img, str) or not isinstance(rec.get("question"), str):
        raise ValueError("a record needs 'image' (a path) and 'question' (a string)")
    answers = rec.get("answer")
    answers = [answers] if isinstance(answers, str) else answers
    if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise ValueError("'answer' must be a non-empty string or list of strings")
    raw = rec.get("bboxs") or ([rec["box"]] if "box" in rec else [rec["bbox"]] if "bbox" in rec else None)
    if not raw:
        raise ValueError("a record needs 'box', 'bbox' or 'bboxs'")
    image = str(_file(root, img))
    w, h = read_image(image, size_only=True)
    regions = []
    for b in raw:
        if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)):
            raise ValueError(f"box {short(b)} must be four numbers ({box_format})")
        x1, y1, x2, y2 = check_box(_BOX_FORMATS[box_format](b, w, h), f"box {short(b)} ({box_format})", (w, h))
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box {short(b)} ({box_format}) is empty")
        if x2 - x1 < 1 or y2 - y1 < 1:
            raise ValueError(
                f"box {short(b)} is under one pixel of the {w}x{h} image; normalised coordinates need "
                "box_format='xyxy_norm' (0..1) or 'xyxy_1000'"
            )
        regions.append((x1, y1, x2, y2))
    frame = _frame(image, view, (w, h))
    rng = random.Random(f"r3lab-grounded:{seed}:{n}")
    a = answers[0]
    pieces = []
    for k, r in enumerate(regions):
        box = region_input_box(r, frame)
        head = ("<think>" + rng.choice(GROUNDED_OPEN)) if k == 0 else rng.choice(GROUNDED_MORE)
        pieces += [Piece(MODEL, head + " " + format_crop_call(box), tag="reasoning"), crop_piece(box, (w, h))]
    pieces.append(
        Piece(MODEL, rng.choice(GROUNDED_END).format(a=a) + f"</think><answer>{a}</answer>{IM_END}", tag="answer")
    )
    prov = {
        "source": str(path),
        "line": n,
        "format": "grounded-vqa",
        "box_format": box_format,
        "input_size": list(frame.input_size),
        "view": asdict(view),
        **{k: rec[k] for k in ("dataset", "split", "id") if k in rec},
    }
    return Sample(
        image,
        rec["question"],
        list(answers),
        regions,
        pieces,
        rec.get("family", "grounded"),
        str(rec.get("id", f"{path.stem}-{n:06d}")),
        prov,
    )
