"""One record per question of a run (questions.jsonl): the question, the accepted answers, the model's own answer and
the crops it took (embedded as PNG data URIs), each audit setting's answer, attention vs box; and the reproduction
check between two runs, `diff_runs`: the questions whose correctness differs.

Records come from an audit (`audit_run.run_audit`), from any evaluation's trajectories (`trajectory_records`) or
from an imported run (`r3lab.audit.imported`), so `r3lab report diff` compares any two of them.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..core.files import atomic_write_text, read_text
from ..core.settings import short
from ..core.trajectory import IMAGE
from ..train.rewards import accuracy

THUMB = 160  # longest side of an embedded crop, in pixels (the miniature's crops are smaller: kept as they are)


def data_uri(image: Image.Image, side: int = THUMB) -> str:
    """A PNG data URI of `image`, shrunk to at most `side` pixels on its longest side."""
    im = image.convert("RGB")
    if max(im.size) > side:
        im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def crops_of(traj, images: bool = True) -> list[dict]:
    """The crops a trajectory took: box in the model-input frame and in original pixels, and its pixels."""
    out = []
    for p in traj.pieces:
        if p.kind == IMAGE and p.info.role == "crop":
            c = {"box_input": _list(p.info.box_input), "box_orig": _list(p.info.box_orig)}
            if images and p.image is not None:
                c["image"] = data_uri(p.image)
            out.append(c)
    return out


def answer_record(traj, correct: float | None) -> dict:
    """What a question's record keeps of one rollout: the answer, right or wrong, model tokens, accepted calls."""
    return {
        "answer": traj.final_answer(),
        "correct": None if correct is None else bool(correct >= 0.5),
        "tokens": sum(len(p.ids or []) for p in traj.pieces if p.kind == "model_text"),
        "calls": sum(e.ok for e in traj.events),
    }


def question_record(
    sample,
    family: str,
    own,
    own_hit: float | None,
    settings: dict,
    vote: tuple | None = None,
    attention: Sequence = (),
    images: bool = True,
) -> dict:
    """One question: the sample, its own rollout (with its crops) and each setting's (name -> (trajectory, hit));
    vote: majority_no_crop's (winner, hit, the k answers, any of them right)."""
    rec = {
        "sample_id": str(getattr(sample, "sample_id", "") or own.sample_id),
        "family": family,
        "question": getattr(sample, "question", own.question),
        "answers": list(getattr(sample, "answers", own.answers)),
        "own": {**answer_record(own, own_hit), "crops": crops_of(own, images)},
        "settings": {k: answer_record(t, h) for k, (t, h) in settings.items()},
    }
    if vote is not None:
        winner, hit, answers, any_k = vote
        rec["settings"]["majority_no_crop"] = {
            "answer": winner,
            "correct": bool(hit >= 0.5),
            "answers": list(answers),
            "any_correct": bool(any_k),
        }
    rec["attention_box"] = [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in attention]
    return rec


def trajectory_records(trajectories: Sequence, hits: Sequence[float | None], images: bool = True) -> list[dict]:
    """Records of plain trajectories (an evaluation without the audit, an imported run): the own rollout only."""
    return [question_record(t, t.family or "?", t, h, {}, images=images) for t, h in zip(trajectories, hits)]


def save_questions(folder: str | os.PathLike, records: Sequence[dict]) -> Path:
    path = Path(folder) / "questions.jsonl"
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return path


def load_questions(run: str | os.PathLike) -> list[dict]:
    """A run's question records: its questions.jsonl (a folder or the file itself)."""
    path = Path(run)
    path = path / "questions.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: a run written by `r3lab eval --out` (or `r3lab report audit`) "
            "holds questions.jsonl"
        )
    out = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise ValueError(f"{path}, line {n}: not JSON ({e})") from None
        if not isinstance(rec, dict) or "sample_id" not in rec or not isinstance(rec.get("own"), dict):
            raise ValueError(f"{path}, line {n}: a question record needs 'sample_id' and 'own'")
        if why := _malformed(rec):
            raise ValueError(f"{path}, line {n}: {why}: was the file edited? Write it anew (r3lab eval --audit)")
        out.append(rec)
    return out


def _malformed(rec: dict) -> str:
    """What is wrong with a question record's fields the report reads, or ""."""
    for key, typ in (
        ("sample_id", (str, int)),
        ("family", str),
        ("question", str),
        ("answers", list),
        ("settings", dict),
    ):
        if key in rec and not isinstance(rec[key], typ) or isinstance(rec.get(key), bool):
            return f"{key} = {short(rec[key])} is not a {typ.__name__ if isinstance(typ, type) else 'text or number'}"
    answers = [rec["own"], *(rec.get("settings") or {}).values()]
    if not all(isinstance(a, dict) for a in answers):
        return "each setting's answer must be a record"
    for a in answers:
        crops = a.get("crops", [])
        if not isinstance(crops, list) or not all(isinstance(c, dict) for c in crops):
            return f"crops = {short(crops)} is not a list of crops"
        for c in crops:
            box = c.get("box_input")
            if box is not None and not (
                isinstance(box, list)
                and len(box) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
            ):
                return f"a crop's box_input = {short(box)} is not four finite numbers"
            if not isinstance(c.get("image", ""), str):
                return f"a crop's image = {short(c.get('image'))} is not text"
    return ""


def diff_runs(a: Sequence[dict], b: Sequence[dict]) -> dict:
    """The reproduction check: the questions of both runs (by sample id) whose own answer is right in one and wrong
    in the other ("fixed": wrong in a, right in b; "broken": the reverse), counts per family, and the ids only one
    run holds."""
    ra, rb = _by_id(a, "A"), _by_id(b, "B")
    both = [k for k in ra if k in rb]
    changed = []
    for k in both:
        ca, cb = ra[k]["own"].get("correct"), rb[k]["own"].get("correct")
        if ca is not None and cb is not None and ca != cb:
            changed.append(
                {
                    "sample_id": k,
                    "family": ra[k].get("family", "?"),
                    "question": ra[k].get("question", ""),
                    "answers": ra[k].get("answers", []),
                    "change": "fixed" if cb else "broken",
                    "a": _side(ra[k]),
                    "b": _side(rb[k]),
                }
            )
    fams = sorted({ra[k].get("family", "?") for k in both})
    per = {
        f: {
            "n": sum(ra[k].get("family", "?") == f for k in both),
            "fixed": sum(c["family"] == f and c["change"] == "fixed" for c in changed),
            "broken": sum(c["family"] == f and c["change"] == "broken" for c in changed),
        }
        for f in fams
    }
    per["all"] = {
        "n": len(both),
        "fixed": sum(c["change"] == "fixed" for c in changed),
        "broken": sum(c["change"] == "broken" for c in changed),
    }
    return {
        "common": len(both),
        "only_a": [k for k in ra if k not in rb],
        "only_b": [k for k in rb if k not in ra],
        "families": per,
        "changed": changed,
    }


def _side(rec: dict) -> dict:
    own = rec["own"]
    return {"answer": own.get("answer"), "correct": own.get("correct"), "crops": own.get("crops", [])}


def _by_id(records: Sequence[dict], name: str) -> dict[str, dict]:
    out = {}
    for r in records:
        k = str(r["sample_id"])
        if k in out:
            raise ValueError(f"run {name} holds question {short(k)} twice: a diff needs one record per question")
        out[k] = r
    return out


def _list(v):
    return None if v is None else [float(x) for x in v]


def reward_hit(sample, text: str) -> float:
    """The evaluation's rule: the last <answer> matches an accepted answer after normalisation (no judge)."""
    return accuracy(None, [text], [list(sample.answers)])[0]


def nan_to_none(rows: dict) -> dict:
    """Rows as JSON holds them: NaN ("not measured") as null."""
    return {
        f: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for f, r in rows.items()
    }
