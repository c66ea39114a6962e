"""The official VLM-R3 data formats (grounded-VQA records turned into VLIR samples: `r3lab.data.grounded_vqa`).

- SFT (`qwen_vl_finetune` loader): one JSON list of `{image_path, question, response_list,
  img_crop_list}`; crop k (a pre-made image file) follows text segment k; boxes exist only as crop
  calls in the text, in the model-input frame of the SFT run (max 2048*28*28 pixels: `OFFICIAL_SFT_VIEW`).
- RL (`rgrpo.py`): one JSON list of `{image_path, question, answer, source}`, alternatives in
  `answer` separated by "/".

Exports add an `"r3lab"` key per record (answers, regions, details, family, id, provenance) which
the official loaders ignore, so samples -> file -> samples loses nothing; files without it import too.
Bad records are reported with their line (JSONL) or record number (JSON list); nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from ..core.answer import extract_answer
from ..core.crop_calls import CallStyle, find_crop_calls
from ..core.files import file_stem, inside
from ..core.prompt import IM_END
from ..core.records import ImportReport, bad_record, check_unique, read_records
from ..core.regions import Frame, ViewConfig, check_box, crop_and_zoom
from ..core.settings import short
from ..core.trajectory import IMAGE, MODEL, Piece, crop_piece
from .call_styles import restyle
from .sample import Sample, read_image

OFFICIAL_SFT_VIEW = ViewConfig(min_pixels=3136, max_pixels=1605632, crop_min_pixels=3136, crop_max_pixels=1605632)


# -- SFT ---------------------------------------------------------------------------------------
def export_sft(
    samples,
    path: str | os.PathLike,
    view: ViewConfig | None = None,
    extras: bool = True,
    calls: CallStyle | None = None,
) -> Path:
    """Write the official SFT JSON list; images and zoomed crops go to `images/` beside it.

    Crops are cut with `view` (the view the rationale's boxes are in), as the environment would.
    calls: the style `response_list` writes crop calls in (default: the official one, absolute pixels in bare
    JSON); samples written in another style are converted (`r3lab.data.restyle`).
    """
    calls = CallStyle.of(calls)
    path = Path(path)
    img_dir = path.parent / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for s in samples:
        v = view or _view_of(s)
        if not s.rationale:
            raise ValueError(f"sample {s.sample_id}: the SFT format needs a reference rationale")
        s = restyle(s, calls, v)
        main = s.load_image()
        main_rel = f"images/{file_stem(s.sample_id)}.png"
        main.save(path.parent / main_rel)
        texts, crops = [], []
        for p in s.rationale:
            if p.kind == IMAGE:
                crop = p.image if p.image is not None else crop_and_zoom(main, p.info.box_input, v).image
                rel = f"images/{file_stem(s.sample_id)}_crop{len(crops)}.png"
                crop.save(path.parent / rel)
                crops.append(rel)
            else:
                texts.append(p.text)
        suffixes = s.provenance.get("sft_suffixes") or [""] * len(texts)
        if texts[-1].endswith(IM_END):
            texts[-1] = texts[-1][: -len(IM_END)]
        rec = {
            "image_path": main_rel,
            "question": s.question,
            "response_list": [t + x for t, x in zip(texts, suffixes)],
            "img_crop_list": crops,
        }
        if extras:
            rec["r3lab"] = _extras(s, v)
        records.append(rec)
    path.write_text(json.dumps(records, indent=1))
    return path


def import_sft(
    path: str | os.PathLike,
    view: ViewConfig | None = None,
    image_root: str | os.PathLike | None = None,
    errors: str = "raise",
    calls: CallStyle | None = None,
) -> tuple[list[Sample], ImportReport]:
    """Read an official SFT JSON list into Samples (crop pixels kept as given).

    view: the frame the boxes are in (default: the r3lab key's view if present, else OFFICIAL_SFT_VIEW).
    image_root: where relative paths start (default: the JSON file's folder).
    calls: the style the file writes crop calls in (default: the r3lab key's, else the official absolute JSON);
    the samples keep it (`r3lab.data.restyle` converts them).
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    out, rep, ids = [], ImportReport(str(path)), {}
    for n, rec in read_records(path, rep, errors):
        try:
            out.append(_unique(_sft_sample(rec, n, path, root, view, calls), ids, n, rep))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            bad_record(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


def _sft_sample(rec: dict, n: int, path: Path, root: Path, view: ViewConfig | None, calls) -> Sample:
    for key, typ in (("image_path", str), ("question", str), ("response_list", list)):
        if not isinstance(rec.get(key), typ):
            raise ValueError(f"field {short(key)} must be a {typ.__name__}")
    segs, crops = rec["response_list"], rec.get("img_crop_list") or []
    if not segs or not all(isinstance(t, str) for t in segs):
        raise ValueError("response_list must be a non-empty list of strings")
    if len(crops) != len(segs) - 1:
        raise ValueError(f"{len(segs)} response segments need {len(segs) - 1} crops, img_crop_list has {len(crops)}")
    ex = rec.get("r3lab") or {}
    view = view or (ViewConfig(**ex["view"]) if "view" in ex else OFFICIAL_SFT_VIEW)
    style = CallStyle.of(calls if calls is not None else (ex.get("provenance") or {}).get("calls"))
    image = str(_file(root, rec["image_path"]))
    frame = _frame(image, view)
    pieces, suffixes = [], []
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        text = seg.rstrip()  # the official loader ends segments with "\n"; our call ends with "}"
        suffixes.append(seg[len(text) :])
        if last:
            if calls := find_crop_calls(text, style=style):  # nothing follows it: no crop could ever answer this call
                raise ValueError(
                    f"the last segment (segment {k}) holds a crop call ({calls[-1].raw[:60]!r}) but "
                    f"no crop follows it: the last segment must answer; give its crop in "
                    "img_crop_list and the answer in a segment after it"
                )
            pieces.append(Piece(MODEL, text + IM_END, tag="answer"))
            break
        calls = find_crop_calls(text, frame, view.max_aspect, style)
        if not calls or not calls[-1].ok or calls[-1].end != len(text):
            why = calls[-1].message if calls else "no crop call"
            raise ValueError(f"segment {k} must end with a valid crop call before crop {k} ({why})")
        pieces.append(Piece(MODEL, text, tag="reasoning"))
        _written_inside(calls[-1].raw, style, frame, k)
        crop_file = str(_file(root, crops[k]))
        _frame(crop_file, view)  # a crop of impossible aspect is named now, not when training fits it
        crop = read_image(crop_file)
        pieces.append(crop_piece(calls[-1].box, (frame.orig_w, frame.orig_h), crop))
    answers = ex.get("answers") or _answer_in(pieces[-1].text)
    prov = ex.get("provenance") or {
        "source": str(path),
        "line": n,
        "format": "vlm-r3-sft",
        "input_size": list(frame.input_size),
        "view": asdict(view),
    }
    if any(suffixes):
        prov = {**prov, "sft_suffixes": suffixes}
    if style != CallStyle() or "calls" in prov:
        prov = {**prov, "calls": style.to_dict()}
    return Sample(
        image,
        rec["question"],
        answers,
        [tuple(b) for b in ex.get("regions", [])],
        pieces,
        ex.get("family", ""),
        ex.get("sample_id") or f"{path.stem}-{n:06d}",
        prov,
        [tuple(b) for b in ex.get("details", [])],
    )


# -- RL ----------------------------------------------------------------------------------------
def export_rl(samples, path: str | os.PathLike, extras: bool = True) -> Path:
    """Write the official RL JSON list (`answer` holds "/"-separated alternatives)."""
    path = Path(path)
    (path.parent / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for s in samples:
        if any("/" in a for a in s.answers):
            raise ValueError(f"sample {s.sample_id}: answers {s.answers} contain '/', the RL format's separator")
        rel = f"images/{file_stem(s.sample_id)}.png"
        s.load_image().save(path.parent / rel)
        rec = {
            "image_path": rel,
            "question": s.question,
            "answer": "/".join(s.answers),
            "source": s.provenance.get("source_name") or f"r3lab-{s.family or 'sample'}",
        }
        if extras:
            rec["r3lab"] = _extras(s, _view_of(s))
        records.append(rec)
    path.write_text(json.dumps(records, indent=1))
    return path


def import_rl(
    path: str | os.PathLike, image_root: str | os.PathLike | None = None, errors: str = "raise"
) -> tuple[list[Sample], ImportReport]:
    """Read an official RL JSON list into Samples without rationales."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    out, rep, ids = [], ImportReport(str(path)), {}
    for n, rec in read_records(path, rep, errors):
        try:
            for key in ("image_path", "question", "answer", "source"):
                if not isinstance(rec.get(key), str) or not rec[key]:
                    raise ValueError(f"field {short(key)} must be a non-empty string")
            ex = rec.get("r3lab") or {}
            src = rec["source"]
            prov = ex.get("provenance") or {"source": str(path), "line": n, "format": "vlm-r3-rl"}
            answers = rec["answer"].split("/")
            if not all(a.strip() for a in answers):
                raise ValueError(
                    f"answer {short(rec['answer'])} holds an empty alternative (alternatives are "
                    f"separated "
                    "by '/'): write each accepted answer between the slashes"
                )
            image = str(_file(root, rec["image_path"]))
            _frame(image, ViewConfig())  # an unreadable or impossible image is reported here, not in training
            family = ex.get("family") or (src[len("r3lab-") :] if src.startswith("r3lab-") else "")
            if src != f"r3lab-{family or 'sample'}":  # the official verifier is chosen by source: keep it
                prov = {**prov, "source_name": src}
            out.append(
                _unique(
                    Sample(
                        image,
                        rec["question"],
                        answers,
                        [tuple(b) for b in ex.get("regions", [])],
                        None,
                        family,
                        ex.get("sample_id") or f"{path.stem}-{n:06d}",
                        prov,
                        [tuple(b) for b in ex.get("details", [])],
                    ),
                    ids,
                    n,
                    rep,
                )
            )
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            bad_record(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


def _written_inside(raw: str, style: CallStyle, frame: Frame, k: int) -> None:
    """A crop box the record writes must lie inside its image (the crop call grammar would clip it, and the
    record's own crop image would then not show what the box says)."""
    try:
        args = json.loads(raw[raw.index("{") : raw.rindex("}") + 1])
        box = args.get("bbox_2d") or (args.get("arguments") or {}).get("bbox_2d")
    except (ValueError, AttributeError):
        return  # not JSON the parser accepted as is: the verdict above already judged it
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box):
        limit = (1000, 1000) if style.coords == "relative" else frame.input_size
        check_box(box, f"segment {k}'s crop box", limit)


def _unique(s: Sample, ids: dict, n: int, rep: ImportReport) -> Sample:
    check_unique(ids, s.sample_id, n, "sample_id", rep.unit)
    return s


def _frame(image: str, view: ViewConfig, size: tuple[int, int] | None = None) -> Frame:
    """The model-input frame of an image file; ValueError naming it when it is unreadable or of impossible aspect."""
    size = size or read_image(image, size_only=True)
    try:
        return Frame.of(size, view)
    except ValueError as e:
        raise ValueError(
            f"image {image} ({size[0]}x{size[1]}) cannot be shown to the model ({e}); crop or pad "
            "it, or drop the record"
        ) from None


def _file(root: Path, rel: str) -> Path:
    """The image a record names: relative to `root` (the image root), or absolute (the official files' layout)
    but inside it, links included (`inside`, the one path rule)."""
    p = inside(
        root, rel, "image", "the image root", "pass --image-root (image_root) naming the folder that holds the images"
    )
    if not p.is_file():
        raise FileNotFoundError(f"image {p} does not exist")
    return p


def _extras(s: Sample, view: ViewConfig) -> dict:
    return {
        "sample_id": s.sample_id,
        "family": s.family,
        "answers": list(s.answers),
        "regions": [list(b) for b in s.regions],
        "details": [list(b) for b in s.details],
        "provenance": s.provenance,
        "view": asdict(view),
    }


def _view_of(s: Sample) -> ViewConfig:
    v = s.provenance.get("view")
    return ViewConfig(**v) if v else ViewConfig()


def _answer_in(text: str) -> list[str]:
    found = extract_answer(text)
    if found is None:
        raise ValueError("the last segment has no <answer>...</answer>")
    return [found]
