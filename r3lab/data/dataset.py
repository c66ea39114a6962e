"""JSONL datasets of VLIR samples: save, and load (optionally retargeted to another view).

A dataset folder holds `samples.jsonl` (one sample a line), `meta.json` and `images/` (PNGs, paths
relative to the folder); synthetic scenes can instead be stored as JSON and re-rendered on load.
Loading names the file and line of every bad sample and drops nothing silently.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.files import FolderLock, check_out_dir, file_stem, given_path, inside, replace_entries, temp_dir
from ..core.records import check_unique, json_lines
from ..core.regions import Frame, ViewConfig, check_box, check_size, smart_resize
from ..core.settings import short
from ..core.trajectory import IMAGE, Piece, crop_piece
from .sample import Sample, check_image, read_image
from .tasks import ALL_FAMILIES
from .vlir import image_size, retarget
from .world import Scene

FORMAT = "r3lab-vlir"
VERSION = 1
FAMILY_NAME = re.compile(r"[\w.:/+ -]{0,64}")  # a family names a row of every table: plain text


@dataclass
class LoadError:
    line: int
    message: str


@dataclass
class VLIRDataset:
    """Samples read from a dataset folder, its metadata, and the bad lines (errors='report')."""

    samples: list
    meta: dict
    path: Path | None = None
    errors: list = field(default_factory=list)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    def __iter__(self):
        return iter(self.samples)

    @property
    def view(self) -> ViewConfig:
        return ViewConfig(**self.meta.get("view", {}))

    def __repr__(self):
        return f"VLIRDataset({len(self)} samples from {self.path}, {len(self.errors)} bad lines)"


OWN = ("samples.jsonl", "meta.json", "images")  # a dataset folder's own entries: overwrite replaces only these


def check_destination(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Make sure, before any work, that a dataset can be written to `out` (`check_out_dir` with its own files)."""
    return check_out_dir(out, OWN, overwrite, "dataset")


def save_dataset(
    samples: Iterable[Sample],
    out: str | os.PathLike,
    meta: dict | None = None,
    images: str = "png",
    progress: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `out/samples.jsonl`, `out/meta.json` and PNGs under `out/images/` (relative paths).

    images: "png" writes every image; "scene" stores synthetic scenes as JSON (re-rendered on load,
    byte-identical) and writes PNGs only for non-synthetic images. A folder that already holds a
    dataset is refused unless overwrite=True, which replaces that dataset's own files (OWN) and leaves
    no stale image behind. Everything is written into a hidden folder beside `out` first and moved
    into place at the end, so a crash or Ctrl-C leaves the old dataset (if any) as it was.
    """
    if images not in ("png", "scene"):
        raise ValueError(f"images must be 'png' or 'scene', got {short(images)}")
    with claim_destination(out, overwrite):
        return _save(list(samples), Path(out), meta, images, progress)


def claim_destination(out: str | os.PathLike, overwrite: bool = False) -> FolderLock:
    """`check_destination`, then `out`'s lock (one writer per folder), then the check again under the lock (so two
    builds into one folder cannot both pass it); release the lock (or leave the `with`) once the dataset is saved."""
    check_destination(out, overwrite)
    lock = FolderLock(out, "dataset")
    try:
        check_destination(out, overwrite)
    except BaseException:
        lock.release()
        raise
    return lock


def _save(samples: list, out: Path, meta: dict | None, images: str, progress: bool | None) -> Path:
    stems = [file_stem(s.sample_id) for s in samples]
    if len(set(stems)) != len(stems) or not all(s.sample_id for s in samples):
        dup = next((x for x in stems if stems.count(x) > 1), "")
        raise ValueError(
            f"every sample needs a unique, non-empty sample_id (they name the image files); {short(dup)} repeats"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob(f".{out.name}.partial-*"):  # left by a save that was killed
        shutil.rmtree(old, ignore_errors=True)
    tmp = temp_dir(f".{out.name}.partial-", out.parent)
    try:
        (tmp / "images").mkdir()
        meta = {"format": FORMAT, "version": VERSION, "n": len(samples), **(meta or {})}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        with open(tmp / "samples.jsonl", "w") as f:
            for s in tqdm(samples, desc="save VLIR", disable=progress_disabled(progress)):
                f.write(json.dumps(sample_to_dict(s, tmp, images)) + "\n")
        out.mkdir(exist_ok=True)
        replace_entries(tmp, out, OWN)  # the old dataset's own files go only once the new one is in place
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def sample_to_dict(s: Sample, root: Path, images: str = "png") -> dict:
    d = {
        "sample_id": s.sample_id,
        "family": s.family,
        "question": s.question,
        "answers": list(s.answers),
        "size": list(image_size(s)),
        "regions": [list(b) for b in s.regions],
        "details": [list(b) for b in s.details],
        "provenance": s.provenance,
    }
    if images == "scene" and isinstance(s.image, Scene):
        d["image"], d["scene"] = None, {k: v for k, v in s.image.to_dict().items() if k != "world"}
        d["scene"]["world"] = s.image.world.to_dict()
    else:
        rel = f"images/{file_stem(s.sample_id)}.png"
        s.load_image().save(root / rel, compress_level=1)
        d["image"] = rel
    rat = []
    for k, p in enumerate(s.rationale or []):
        if p.kind == IMAGE:
            pd = {"kind": IMAGE, "box_input": list(p.info.box_input)}
            if p.image is not None:  # pre-made crop pixels (official SFT format)
                pd["image"] = f"images/{file_stem(s.sample_id)}_crop{k}.png"
                p.image.save(root / pd["image"])
            rat.append(pd)
        else:
            rat.append({"kind": p.kind, "text": p.text, "tag": p.tag})
    d["rationale"] = rat if s.rationale is not None else None
    return d


def sample_from_dict(d: dict, root: Path, built_for: dict | None = None) -> Sample:
    """A dataset line's Sample; `built_for`: the view (meta.json's) its crop boxes are in, which they must fit."""
    name = f"sample {short(d.get('sample_id'))}"
    size = d.get("size")
    if size is not None:
        size = check_size(size, f"{name}: size")
    if d.get("scene") is not None:
        image = Scene.from_dict(d["scene"])
    else:
        image = str(_existing(inside(root, d["image"], "image")))
        try:  # a text file named .png, a cut-off file or a decompression bomb is refused at load, not in training
            actual = check_image(image)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if size is not None and tuple(size) != actual:  # its boxes were written for another image
            raise ValueError(
                f"{name}: its line says size {size[0]}x{size[1]}, but its image {image} is "
                f"{actual[0]}x{actual[1]}: the file was replaced or resized after the line was written "
                "(its boxes would lie elsewhere); restore the image, or write the line anew"
            )
        size = actual
    if size is not None:  # an image no model can take is refused now too, rather than at its first use
        w, h = (int(v) for v in size)
        try:
            smart_resize(h, w)
        except ValueError as e:
            raise ValueError(
                f"{name}: its {w}x{h} image cannot be shown to the model ({e}); crop or pad it, or drop the sample"
            ) from None
    rationale = None
    if d.get("rationale") is not None:
        size = check_size(d.get("size"), f"{name}: size")
        rationale = []
        frame = Frame.of(size, ViewConfig(**built_for)) if built_for else None
        for k, p in enumerate(d["rationale"]):
            if p["kind"] == IMAGE:
                crop = None
                if p.get("image"):
                    crop = read_image(_existing(inside(root, p["image"], "crop image")))
                try:  # inside the model-input view the dataset was built for
                    piece = crop_piece(
                        check_box(p["box_input"], "crop box (box_input)", frame and (frame.input_w, frame.input_h)),
                        size,
                        crop,
                    )
                except ValueError as e:
                    raise ValueError(f"{name}: rationale piece {k}: {e}") from None
                rationale.append(piece)
            else:
                rationale.append(Piece(p["kind"], p["text"], tag=p.get("tag", "")))
    family, prov = d.get("family", ""), d.get("provenance", {})
    if not isinstance(family, str) or not FAMILY_NAME.fullmatch(family) or not isinstance(prov, dict):
        raise ValueError(
            f"{name}: family {short(family)} is not a family's name (letters, digits and _ . : / + - "
            "or spaces, at most 64): evaluation reports a row per family"
        )
    if prov.get("generator") == "r3lab.world" and family not in ALL_FAMILIES:
        raise ValueError(
            f"{name}: family {short(family)} is no family of r3lab's world, which made this line; "
            f"choose from {list(ALL_FAMILIES)}"
        )
    s = Sample(
        image,
        d["question"],
        d["answers"],
        [tuple(b) for b in d.get("regions", [])],
        rationale,
        family,
        d["sample_id"],
        dict(prov),
        [tuple(b) for b in d.get("details", [])],
    )
    s.check_fields(size, need_answer=True)  # an answer to score, and boxes inside the image
    return s


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"image {path if len(str(path)) < 1000 else short(str(path), 1000)} does not exist")
    return path


def load_dataset(path: str | os.PathLike, view: ViewConfig | None = None, errors: str = "raise") -> VLIRDataset:
    """Read a dataset folder (or its samples.jsonl). A bad line raises an error naming file and line;
    with errors="report" bad lines are collected in `.errors` instead (nothing is dropped silently).

    view: when given and different from the view the dataset was built for, crop boxes are
    recomputed from the stored regions (`retarget`); samples that cannot be retargeted raise.
    """
    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', got {short(errors)}")
    path = given_path(path, "dataset path")
    file = path / "samples.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; build a dataset with `r3lab data build --out DIR`")
    root = file.parent
    refuse_foreign(file)
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {}
    samples, bad, ids = [], [], {}
    with open(file, "rb") as f:  # bytes: a line that is not UTF-8 is named, not a raw UnicodeDecodeError
        for n, d in json_lines(f):
            try:
                if isinstance(d, ValueError):
                    raise d
                s = sample_from_dict(d, root, meta.get("view"))
                check_unique(ids, s.sample_id, n, "sample_id")
            except FileNotFoundError as e:
                err = FileNotFoundError(f"{file}:{n}: {e}")
                if errors == "raise":
                    raise err from None
                bad.append(LoadError(n, str(err)))
                continue
            except (ValueError, KeyError, TypeError) as e:
                msg = f"{file}:{n}: bad sample line ({type(e).__name__}: {e})"
                if errors == "raise":
                    raise ValueError(msg + "; fix or delete that line, or load with errors='report'") from None
                bad.append(LoadError(n, msg))
                continue
            samples.append(s)
    if not samples and not bad:  # reading nothing without a word would hide a wrong path or a failed build
        raise ValueError(f"{file} holds no samples: build a dataset with `r3lab data build --out DIR`")
    if view is not None:
        samples = [retarget(s, view) for s in samples]
        meta = {**meta, "view": asdict(view)}
    return VLIRDataset(samples, meta, root, bad)


def refuse_foreign(file: str | os.PathLike) -> None:
    """ValueError naming the import command when `file` holds an importable format, not an r3lab dataset."""
    if hint := foreign_format(Path(file)):
        raise ValueError(
            f"{file} is not an r3lab dataset (one sample per line, written by r3lab data build / "
            f"save_dataset): it looks like {hint}. Import it first: r3lab data import --format "
            f"{hint.split()[0]} {file} --out <dataset folder> "
            "(add --policy <model> for a real model's view)"
        )


def foreign_format(file: Path) -> str:
    """What an importable file that is not an r3lab dataset looks like ("" when it may be one): the first
    record's keys tell the official SFT / RL formats and grounded-VQA records apart."""
    with open(file, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    text = head.lstrip()
    if text.startswith("["):
        return (
            "vlm-r3-sft (the official SFT JSON list)"
            if '"response_list"' in head
            else "vlm-r3-rl (the official RL JSON list)"
            if '"source"' in head
            else "vlm-r3-sft or vlm-r3-rl (a JSON list)"
        )
    try:
        first = json.loads(text.splitlines()[0]) if text else {}
    except ValueError:
        return ""
    if isinstance(first, dict) and "sample_id" not in first and {"box", "bbox", "bboxs"} & set(first):
        return "grounded-vqa (records with an evidence box)"
    return ""


def load_samples(path: str | os.PathLike, view: ViewConfig | None = None, errors: str = "raise") -> list[Sample]:
    """Just the samples of `load_dataset(path, view, errors)` (pass `policy.view` to train a real model)."""
    return load_dataset(path, view, errors).samples
