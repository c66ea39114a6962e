"""Real benchmarks read from their published local copies into `Sample`s: V*, HR-Bench, MME-RealWorld, TreeBench.

Each question becomes a Sample whose `question` is the benchmark's own multiple-choice prompt, whose
`answers` is the correct option letter and whose `regions` are the target boxes (original pixels,
x1 y1 x2 y2) where the benchmark has them; `provenance` records the benchmark, the official index,
the file and row, the options in the order shown and the category fields scoring needs. Images load
lazily (one at a time), so a benchmark of 8K images is read in bounded memory.

Formats and prompts (the files each rule follows, by repository and path):

- **V\\*** (`vstar`; craigwu/vstar_bench on Hugging Face): a folder holding `test_questions.jsonl`, one
  object per line with `image` (relative path, e.g. `direct_attributes/sa_4690.jpg`), `text` (the
  question, then lines `(A) ...`, then the instruction), `label` (the correct letter), `category`
  (`direct_attributes`: 4 options, `relative_position`: 2) and `question_id`; beside each image a JSON
  file with `bbox` (the target objects' boxes, [x, y, w, h]), `target_object`, `question` and
  `options` (correct first): penghao-wu/vstar `vstar_bench_eval.py`. Since the correct option is
  always listed first (penghao-wu/vstar issue 8), options are shuffled with a recorded seed, per
  question, independently of order and `n`. Prompt: lmms-eval `lmms_eval/tasks/vstar_bench/utils.py`
  (`vstar_doc_to_text`, "A. ..." lines) and `_default_template_yaml` (its post-prompt).
- **HR-Bench 4K / 8K** (`hrbench4k`, `hrbench8k`; DreamMr/HR-Bench `hr_bench_4k.tsv`, `hr_bench_8k.tsv`):
  TSV with `index, question, answer, category, A, B, C, D, image, cycle_category`. Prompt: lmms-eval
  `lmms_eval/tasks/hrbench/utils.py` (`hrbench_doc_to_text`).
- **MME-RealWorld(-Lite)** (`mme-realworld`, `mme-realworld-lite`; yifanzhang114/MME-RealWorld-Base64
  `mme_realworld_lite.tsv`, or the `MME-RealWorld.tsv` VLMEvalKit writes from that repository): TSV with
  `index, image, question, multi-choice options` (a list literal of "(A) ..." strings, or those lines),
  `answer, category, l2-category`; five options. Prompt: VLMEvalKit `vlmeval/dataset/image_mcq.py`
  (`MMERealWorld.build_prompt` and `SYS`).
- **TreeBench** (`treebench`; HaochenWang/TreeBench `TreeBench.tsv`): TSV with `index, image, question,
  A..., answer, category` ("Perception/Attributes", ...) and `target_instances` (a list literal of
  [x1, y1, x2, y2] boxes). Prompt: VLMEvalKit `vlmeval/dataset/image_mcq.py` (`TreeBench.build_prompt`).

Scoring lives in `r3lab.bench.scoring`.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import string
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..core.files import inside, read_text
from ..core.records import check_unique
from ..core.regions import check_box
from ..core.settings import short
from ..data.sample import Sample
from .tsv import TsvTable, image_at

BENCHMARKS = ("vstar", "hrbench4k", "hrbench8k", "mme-realworld", "mme-realworld-lite", "treebench")
VSTAR_POST = "\nAnswer with the option's letter from the given choices directly."
HRBENCH_POST = "Answer the option letter directly."
MME_SYS = (
    "Select the best answer to the above multiple-choice question based on the image. "
    "Respond with only the letter (A, B, C, D, or E) of the correct option. \nThe best answer is:"
)
TREEBENCH_POST = "Answer with the correct option's letter directly. \n"
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*(.*?)\s*$")
_OPTION_INLINE = re.compile(r"\(([A-Z])\)\s*([^()]+?)(?=\s*\([A-Z]\)|$)", re.S)  # lmms-eval's vstar_doc_to_text


def read_benchmark(name: str, path: str | os.PathLike, n: int = 0, seed: int = 0, shuffle: bool = True) -> list[Sample]:
    """The first `n` (0 = all) questions of benchmark `name` from its local copy at `path`.

    seed, shuffle: V*'s options are shuffled per question with this seed (recorded in provenance).
    """
    readers = {
        "vstar": read_vstar,
        "treebench": read_treebench,
        "hrbench4k": read_hrbench,
        "hrbench8k": read_hrbench,
        "mme-realworld": read_mme_realworld,
        "mme-realworld-lite": read_mme_realworld,
    }
    if name not in readers:
        raise ValueError(f"unknown benchmark {short(name)}; choose one of {', '.join(BENCHMARKS)}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: download {name} and pass its local copy "
            "(README, section Benchmarks, says where and how to lay it out)"
        )
    if name == "vstar":
        return read_vstar(path, n, seed, shuffle)
    return readers[name](path, n, name=name)


# -- V* --------------------------------------------------------------------------------------------
def read_vstar(path: str | os.PathLike, n: int = 0, seed: int = 0, shuffle: bool = True) -> list[Sample]:
    """V*: `test_questions.jsonl` (or its folder) with the per-image JSON of target boxes beside each image."""
    path = Path(path)
    qfile = path / "test_questions.jsonl" if path.is_dir() else path
    if not qfile.is_file():
        raise FileNotFoundError(f"{qfile} does not exist: the V* folder must hold test_questions.jsonl")
    root = qfile.parent
    out, ids = [], {}
    for line_no, line in enumerate(read_text(qfile).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{qfile}: line {line_no}"
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{where} is not valid JSON ({e})") from None
        s = _vstar_sample(rec, where, line_no, root, qfile, seed, shuffle)
        try:
            check_unique(ids, s.provenance["index"], line_no, "question_id")
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        out.append(s)
        if n and len(out) >= n:
            break
    return out


def _vstar_sample(rec, where, line_no, root, qfile, seed, shuffle) -> Sample:
    for key in ("image", "text", "label", "category"):
        if not isinstance(rec, dict) or not isinstance(rec.get(key), str) or not rec[key].strip():
            raise ValueError(
                f"{where}: field {short(key)} must be a non-empty string (V* lines hold image, text, "
                "label, category, question_id)"
            )
    question, options = split_options(rec["text"].replace(VSTAR_POST.strip(), ""), where)
    label = rec["label"].strip().upper()
    letters = string.ascii_uppercase[: len(options)]
    if label not in letters:
        raise ValueError(f"{where}: label {short(label)} is not one of the options {list(letters)}")
    try:
        image = inside(root, rec["image"], "image")
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if not image.is_file():
        raise FileNotFoundError(
            f"{where}: image {image} does not exist; keep the images where test_questions.jsonl names them"
        )
    meta_file = image.with_suffix(".json")
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{where}: {meta_file} (the target boxes) does not exist; V* ships one JSON per image beside it"
        )
    try:
        meta = json.loads(meta_file.read_text())
        boxes = [_xywh(b) for b in meta["bbox"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{where}: {meta_file} must hold 'bbox', a list of [x, y, w, h] boxes ({e})") from None
    qid = rec.get("question_id", line_no - 1)
    order = list(range(len(options)))
    if shuffle:
        random.Random(f"vstar:{seed}:{qid}").shuffle(order)
    shown = [options[k] for k in order]
    answer = letters[order.index(letters.index(label))]
    prompt = question + "\n" + "\n".join(f"{letters[k]}. {o}" for k, o in enumerate(shown)) + VSTAR_POST
    prov = {
        "benchmark": "vstar",
        "index": qid,
        "source": str(qfile),
        "line": line_no,
        "image": str(image),
        "category": rec["category"],
        "options": dict(zip(letters, shown)),
        "answer": answer,
        "shuffle": {"seed": seed, "order": order, "label": label} if shuffle else None,
        "target_object": meta.get("target_object", []),
    }
    return Sample(str(image), prompt, [answer], boxes, None, rec["category"], f"vstar-{qid}", prov)


def split_options(text: str, where: str) -> tuple[str, list[str]]:
    """A V*-style question: the text before the first "(A) ..." line, and the options in order (options
    written on one line, "... (A) red (B) blue", are read too)."""
    if not any(_OPTION_LINE.match(ln) for ln in text.splitlines()) and "(A)" in text:
        found = list(_OPTION_INLINE.finditer(text))
        letters = [m.group(1) for m in found]
        if letters != list(string.ascii_uppercase[: len(found)]) or len(found) < 2:
            raise ValueError(f"{where}: the options must be (A), (B), ... in order, got {letters}")
        return text[: found[0].start()].strip(), [m.group(2).strip() for m in found]
    question, options = [], []
    for ln in text.strip().splitlines():
        m = _OPTION_LINE.match(ln)
        if m:
            if m.group(1) != string.ascii_uppercase[len(options)]:
                raise ValueError(
                    f"{where}: option ({m.group(1)}) is out of order; expected ({string.ascii_uppercase[len(options)]})"
                )
            options.append(m.group(2))
        elif options and ln.strip():
            raise ValueError(f"{where}: text after the options: {short(ln.strip())}")
        elif not options:
            question.append(ln)
    if len(options) < 2:
        raise ValueError(f"{where}: the text must list at least two options as lines '(A) ...', '(B) ...'")
    return "\n".join(question).strip(), options


def _xywh(b) -> tuple[float, float, float, float]:
    if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)):
        raise ValueError(f"box {short(b)} is not four numbers")
    x, y, w, h = (float(v) for v in b)
    if w <= 0 or h <= 0:
        raise ValueError(f"box {short(b)} has no area")
    return (x, y, x + w, y + h)


# -- TSV benchmarks --------------------------------------------------------------------------------
def read_hrbench(path: str | os.PathLike, n: int = 0, name: str = "hrbench4k") -> list[Sample]:
    """HR-Bench 4K / 8K: one TSV (`hr_bench_4k.tsv` / `hr_bench_8k.tsv`)."""
    table = TsvTable(
        _tsv(path, name), required=("index", "question", "answer", "category", "image", "cycle_category", "A", "B")
    )
    out = []
    for i in range(_count(table, n)):
        where = table.where(i)
        opts = _letter_options(table, i)
        r = table.rows[i]
        prompt = f"{r['question'].strip()}\n" + "".join(f"{k}. {v}\n" for k, v in opts.items()) + HRBENCH_POST
        out.append(
            _tsv_sample(table, i, name, prompt, opts, where, category=r["category"], cycle_category=r["cycle_category"])
        )
    return out


def read_mme_realworld(path: str | os.PathLike, n: int = 0, name: str = "mme-realworld-lite") -> list[Sample]:
    """MME-RealWorld or its Lite subset: one TSV (five options per question)."""
    table = TsvTable(
        _tsv(path, name), required=("index", "image", "question", "multi-choice options", "answer", "category")
    )
    out = []
    for i in range(_count(table, n)):
        where = table.where(i)
        r = table.rows[i]
        lines = _mme_options(r["multi-choice options"], where)
        opts = {}
        for ln in lines:
            m = _OPTION_LINE.match(ln)
            if not m:
                raise ValueError(f"{where}: option {short(ln)} is not of the form '(A) text'")
            opts[m.group(1)] = m.group(2)
        prompt = r["question"] + " " + "The choices are listed below:\n" + "\n".join(lines) + "\n" + MME_SYS
        out.append(
            _tsv_sample(
                table, i, name, prompt, opts, where, category=r["category"], l2_category=r.get("l2-category", "")
            )
        )
    return out


def read_treebench(path: str | os.PathLike, n: int = 0, name: str = "treebench") -> list[Sample]:
    """TreeBench: one TSV (`TreeBench.tsv`) with the target instances' boxes."""
    table = TsvTable(
        _tsv(path, name), required=("index", "image", "question", "answer", "category", "target_instances", "A")
    )
    out = []
    for i in range(_count(table, n)):
        where = table.where(i)
        r = table.rows[i]
        opts = _letter_options(table, i)
        try:
            boxes = ast.literal_eval(r["target_instances"]) if r["target_instances"].strip() else []
            boxes = [_xyxy(b) for b in boxes]
        except (ValueError, SyntaxError, TypeError) as e:
            raise ValueError(f"{where}: target_instances must be a list of [x1, y1, x2, y2] boxes ({e})") from None
        if "/" not in r["category"]:
            raise ValueError(f"{where}: category {short(r['category'])} must be 'Task/Subtask', e.g. 'Perception/OCR'")
        hint = r.get("hint", "").strip()
        prompt = (f"Hint: {hint}\n" if hint and hint.lower() != "nan" else "") + f"Question: {r['question']}\n"
        prompt += "Options:\n" + "".join(f"{k}. {v}\n" for k, v in opts.items()) + TREEBENCH_POST
        out.append(_tsv_sample(table, i, name, prompt, opts, where, boxes=boxes, category=r["category"]))
    return out


def _tsv(path, name) -> Path:
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.tsv"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"{path}: expected exactly one .tsv file for {name}, "
                f"found {[p.name for p in found]}; pass the file itself"
            )
        path = found[0]
    return path


def _count(table: TsvTable, n: int) -> int:
    """How many rows to read; every row's index is checked unique first (a repeated one would be scored twice,
    and a row naming it for its image would be ambiguous)."""
    seen: dict = {}
    for i in range(len(table)):
        try:
            check_unique(seen, table.rows[i].get("index"), table.rows[i]["_row"], "index", "row")
        except ValueError as e:
            raise ValueError(f"{table.where(i)}: {e}") from None
    return min(n, len(table)) if n else len(table)


def _letter_options(table: TsvTable, i: int) -> dict[str, str]:
    r = table.rows[i]
    opts = {k: r[k].strip() for k in string.ascii_uppercase if k in r and r[k].strip() and r[k].strip() != "nan"}
    if len(opts) < 2:
        raise ValueError(f"{table.where(i)}: a question needs at least two options in columns A, B, ...")
    return opts


def _mme_options(value: str, where: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            lines = ast.literal_eval(value)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"{where}: 'multi-choice options' is not a list literal ({e})") from None
    else:
        lines = [ln for ln in value.splitlines() if _OPTION_LINE.match(ln)]
    lines = [str(x).replace("（", "(").replace("）", ")").strip() for x in lines]  # full-width brackets (CN)
    if len(lines) < 2:
        raise ValueError(f"{where}: 'multi-choice options' must list the options as '(A) ...' strings")
    return lines


def _xyxy(b) -> tuple[float, float, float, float]:
    return check_box(b, f"box {short(b)}")  # four finite numbers (not 1e400, which Python reads as inf), not inverted


def _tsv_sample(table: TsvTable, i: int, name: str, prompt: str, opts: dict, where: str, boxes=(), **fields) -> Sample:
    r = table.rows[i]
    answer = r["answer"].strip().upper()
    if answer not in opts:
        raise ValueError(f"{where}: answer {short(r['answer'])} is not one of the options {sorted(opts)}")
    if not r.get("image") and r["_image_len"] == 0:
        raise ValueError(f"{where}: the image field is empty; the row needs a base64 image")
    ref = table.image_ref(i)
    prov = {
        "benchmark": name,
        "index": r["index"],
        "source": str(table.path),
        "row": r["_row"],
        "line": r["_line"],
        "image_ref": ref,
        "options": opts,
        "answer": answer,
        **fields,
    }
    return Sample(
        _LazyImage(ref), prompt, [answer], list(boxes), None, fields.get("category", ""), f"{name}-{r['index']}", prov
    )


class _LazyImage:
    """A TSV row's image, decoded when a rollout asks for it (never held between calls)."""

    def __init__(self, ref: dict):
        self.ref = ref

    def __call__(self) -> Image.Image:
        return image_at(self.ref)


def item_image(provenance: dict) -> Image.Image:
    """The original image of a benchmark item, from its provenance (what a bench run's items.jsonl records)."""
    if "image_ref" in provenance:
        return image_at(provenance["image_ref"])
    path = Path(provenance.get("image", ""))
    if not path.is_file():
        raise FileNotFoundError(
            f"image {path} of {provenance.get('benchmark')} item {provenance.get('index')} "
            "does not exist; the benchmark copy moved?"
        )
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"image {path} is not a readable image ({e})") from None
