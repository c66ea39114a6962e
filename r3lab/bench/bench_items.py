"""A benchmark run's items: each question's scored record (the benchmark's score, the crops and their IoU with the
targets), written to `items.jsonl` with its trajectory (crops as PNG files under `crops/`) and read back
(`load_bench_run`), and the rows per category and headline numbers that summarise them (`summarize_bench`)."""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from ..core.files import file_stem, read_text
from ..core.trajectory import IMAGE, MODEL, Trajectory
from .readers import item_image
from .scoring import best_overlap_iou, cycle_accuracy, mean, score_item


def item_record(name: str, sample, traj: Trajectory) -> dict:
    """One scored item: the benchmark's score, the crop behaviour, IoU of the crops with the targets."""
    prov = sample.provenance
    response = traj.model_text()
    rec = {
        "id": sample.sample_id,
        "index": prov.get("index"),
        "category": prov.get("category", ""),
        "answer": prov["answer"],
        **score_item(name, response, prov, sample.regions),
    }
    crops = crop_boxes_orig(traj)
    rec.update(
        crops=len(crops),
        calls=len(traj.events),
        refused=sum(not e.ok for e in traj.events),
        crop_iou=best_overlap_iou(crops, sample.regions) if sample.regions and crops else None,
        tokens=sum(len(p.ids or []) for p in traj.pieces if p.kind == MODEL),
        stop=traj.meta.get("stop"),
        response=response,
    )
    for k in ("cycle_category", "l2_category"):
        if k in prov:
            rec[k] = prov[k]
    rec["provenance"] = prov
    return rec


def crop_boxes_orig(traj: Trajectory) -> list[tuple]:
    """The executed crops' boxes in original pixels, half-open (the pixels actually cut)."""
    out = []
    for p in traj.crops:
        if p.info.box_orig is not None:
            x1, y1, x2, y2 = p.info.box_orig
            out.append((x1, y1, x2 + 1, y2 + 1))
    return out


def summarize_bench(name: str, items: Sequence[dict]) -> tuple[dict, dict]:
    """Rows per category (and "all") and the headline numbers the benchmark reports."""
    groups: dict[str, list] = defaultdict(list)
    for it in items:
        groups[_group(name, it)].append(it)
    rows = {g: _row(groups[g]) for g in sorted(groups)}
    rows["all"] = _row(items)
    headline = {"accuracy": rows["all"]["accuracy"]}
    if name.startswith("hrbench"):
        cyc = cycle_accuracy(items)
        headline = {
            "accuracy (cycle-averaged)": cyc.pop("all"),
            **{f"{k} (cycle-averaged)": v for k, v in cyc.items()},
            "accuracy (per item)": rows["all"]["accuracy"],
        }
    if name == "treebench":
        headline["mIoU"] = mean(it["box_iou"] for it in items)
    if any(it["crop_iou"] is not None for it in items):
        headline["crop IoU"] = rows["all"]["crop_iou"]
    return rows, headline


def _group(name: str, it: dict) -> str:
    cat = str(it.get("category", "")) or "?"
    return cat.split("/")[0] if name in ("treebench", "mme-realworld", "mme-realworld-lite") else cat


def _row(items: Sequence[dict]) -> dict:
    calls = sum(it["calls"] for it in items)
    with_crop = [it["hit"] for it in items if it["crops"]]
    return {
        "n": len(items),
        "accuracy": mean(it["hit"] for it in items),
        "crop_rate": mean(bool(it["crops"]) for it in items),
        "crops": mean(it["crops"] for it in items),
        "invalid_crop_rate": sum(it["refused"] for it in items) / calls if calls else 0.0,
        "crop_iou": mean(it["crop_iou"] for it in items),
        "accuracy_crop": mean(with_crop),
        "accuracy_no_crop": mean(it["hit"] for it in items if not it["crops"]),
        "answered": mean(it["answered"] for it in items),
    }


def load_bench_run(folder: str | Path, images: bool = True) -> tuple[list[dict], list[Trajectory]]:
    """A run folder's items and trajectories; with `images`, each main image is read again from the
    benchmark copy its provenance names (crops come from `crops/`)."""
    folder = Path(folder)
    path = folder / "items.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no items.jsonl: is it the --out folder of `r3lab bench`?")
    if not _finished(folder):
        warnings.warn(
            f"{folder} holds a partial run (interrupted, or still running: its results.json is missing or "
            'says "complete": false); what follows covers its finished items only',
            stacklevel=2,
        )
    items, trajs = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            traj = Trajectory.from_dict(rec.pop("trajectory"), base=folder)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: line {n} is not an item record ({e})") from None
        if images:
            traj.main.image = item_image(rec["provenance"])
        items.append(rec)
        trajs.append(traj)
    return items, trajs


def _finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "results.json").read_text()).get("complete", True) is not False
    except (OSError, ValueError, AttributeError):
        return False


def _write_item(out: Path, rec: dict, traj: Trajectory) -> None:
    d = traj.to_dict("none")
    for k, p in enumerate(traj.pieces):
        if p.kind == IMAGE:  # an image's ids are its grid's pad tokens, rebuilt by tokenize: not worth the bytes
            d["pieces"][k]["ids"] = None
        if p.kind == IMAGE and p.info.role == "crop" and p.image is not None:
            rel = f"crops/{file_stem(rec['id'])}_{k}.png"
            (out / "crops").mkdir(exist_ok=True)
            p.image.save(out / rel)
            d["pieces"][k]["image"] = rel
    with open(out / "items.jsonl", "a") as f:
        f.write(json.dumps({**rec, "trajectory": d}, default=_plain) + "\n")


def _plain(v):
    if isinstance(v, tuple):
        return list(v)
    return float(v) if hasattr(v, "__float__") else str(v)
