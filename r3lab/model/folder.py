"""A model folder read from its files alone, no weights loaded: its r3lab.json (`read_extra`), every JSON file and
safetensors header checked (`check_files`), its view (`read_view`), a LoRA checkpoint's base folder (`adapter_base`)."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from ..core.regions import ViewConfig
from ..core.settings import short
from .families import IDEFICS
from .weights import read_header, read_json

R3_FILE = "r3lab.json"
R3_FORMAT = 2  # r3lab.json's format_version (a file without one: format 1, no prompt.calls meaning absolute)
LATEST = "latest"  # a training run's out_dir names its newest checkpoint folder in this file

EXPECTED_FILES = (
    "config.json, model.safetensors (or shards), tokenizer.json/tokenizer_config.json, preprocessor_config.json"
)
# the JSON files from_pretrained reads: each is checked first, so a damaged one is named (not a raw JSONDecodeError)
_JSON_FILES = (
    "config.json",
    R3_FILE,
    "tokenizer_config.json",
    "tokenizer.json",
    "preprocessor_config.json",
    "generation_config.json",
    "special_tokens_map.json",
)


def read_extra(path: Path) -> dict:
    """A folder's r3lab.json ({} without one), refused when a newer r3lab wrote it (its format_version)."""
    extra = read_json(path / R3_FILE) if (path / R3_FILE).is_file() else {}
    if (version := extra.get("format_version", 1)) not in range(1, R3_FORMAT + 1):
        raise ValueError(
            f"{path / R3_FILE} has format_version {short(version)}; this r3lab reads formats 1 to "
            f"{R3_FORMAT}: it was written by a newer r3lab, load it with that one"
        )
    return extra


def check_files(folder: str | os.PathLike) -> None:
    """Read the headers of every *.safetensors and parse every JSON file of a checkpoint folder, before any
    loader does: a truncated or damaged file is a ValueError naming it (safetensors checks that its header
    covers the whole file, so a cut-off download is caught here without reading the tensors)."""
    folder = Path(folder)
    for name in _JSON_FILES:
        if (folder / name).is_file():
            read_json(folder / name)
    read_header(folder)


def read_view(path: str | os.PathLike) -> ViewConfig:
    """The view `load_policy(path).view` has, read from the folder's JSON files without loading weights
    (r3lab.json's view, else the image processor's pixel bounds; the factor from the vision config)."""
    path = Path(path)
    if not (path / "config.json").is_file() and (path / LATEST).is_file():
        path = path / (path / LATEST).read_text().strip()
    config_dir = adapter_base(path) or path  # a LoRA checkpoint: the geometry is its base's
    if not (config_dir / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: expected a checkpoint folder holding {EXPECTED_FILES}")
    config = read_json(config_dir / "config.json")
    vision = config.get("vision_config") or {}
    try:
        factor = (
            int(vision["image_size"])
            if config.get("model_type") in IDEFICS
            else int(vision["patch_size"]) * int(vision["spatial_merge_size"])
        )
        extra = read_extra(path)
        if "view" in extra:
            view = ViewConfig(**{k: v for k, v in extra["view"].items() if k in {f.name for f in fields(ViewConfig)}})
        else:
            pre = read_json(path / "preprocessor_config.json")
            view = default_view(pre.get("size") or {}, pre)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        raise ValueError(
            f"{path}: cannot read its view (pixel bounds and patch size) from its JSON files ({e})"
        ) from None
    return view.with_factor(factor)


def default_view(size: dict, pre: dict) -> ViewConfig:
    """Pixel bounds from an image processor's settings: Qwen's min / max pixels; Idefics3 / SmolVLM's longest
    edge (the main image at most that square) and tile side (the least an image is shown at)."""
    tile = (pre.get("max_image_size") or {}).get("longest_edge")
    if tile:
        lo, hi = int(tile) ** 2, int(size.get("longest_edge", tile)) ** 2
    else:
        lo = size.get("shortest_edge", pre.get("min_pixels", 56 * 56))
        hi = size.get("longest_edge", pre.get("max_pixels", 28 * 28 * 1280))
    return ViewConfig(min_pixels=lo, max_pixels=hi, crop_min_pixels=lo, crop_max_pixels=hi)


def adapter_base(path: str | os.PathLike) -> Path | None:
    """The base folder of a LoRA checkpoint folder (r3lab.json's meta["base"], relative to it), else None."""
    from .adapters import ADAPTER_CONFIG

    path = Path(path)
    if (path / "config.json").is_file() or not (path / ADAPTER_CONFIG).is_file():
        return None
    base = (read_json(path / R3_FILE).get("meta") or {}).get("base") if (path / R3_FILE).is_file() else None
    if not base:
        raise ValueError(
            f"{path} holds a LoRA adapter but its {R3_FILE} names no base folder (meta.base); "
            "save adapters with Policy.save, or merge them (r3lab export --merge)"
        )
    base = Path(base) if Path(base).is_absolute() else (path / base)
    if not (base / "config.json").is_file():
        raise FileNotFoundError(
            f"{path}: its adapter's base folder {base} is missing (it holds the frozen weights "
            "the adapter was trained on): copy it back, or point meta.base in r3lab.json at it"
        )
    return base.resolve()
