"""The recipe's settings across file formats: `format_version` 2 (the curriculum itself: stages of phases, every
setting stored) and format 1 (`format_1.py`: flat names over a curriculum it did not store), which older recipe.json
files and the shipped model card still use. `read_settings` reads a stored recipe of any format, refusing a newer one.
"""

from __future__ import annotations

from ..core.settings import short
from .format_1 import ALIASES, earlier_settings, from_flat

FORMAT_VERSION = 2  # written in recipe.json, card_results.json (and the card) and r3lab.json's meta.recipe


def read_settings(stored: dict, where: str = "the stored recipe") -> dict:
    """RecipeConfig's keyword values from a stored recipe (recipe.json, a card's config) of any format."""
    version = stored.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"{where} has format_version {short(version)}: a format is a whole number from 1 to "
            f"{FORMAT_VERSION} (drop the key to write today's settings)"
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{where} has format_version {version}; this r3lab reads formats 1 to {FORMAT_VERSION}: "
            f"it was written by a newer r3lab, read it with that one"
        )
    if version == FORMAT_VERSION:
        return _as_format_2_ran({k: v for k, v in stored.items() if k != "format_version"})
    old = earlier_settings(stored)
    flat = {k: v for k, v in old.items() if k in ALIASES}
    return {**{k: v for k, v in old.items() if k not in ALIASES}, **from_flat(flat)}


def _as_format_2_ran(values: dict) -> dict:
    """A format-2 recipe written before phases said what they freeze and checks what they take alone: as it ran then
    (a drill froze the vision tower and merger, the sft_read check took read_one alone while below its bar)."""
    for stage in ("base", "sft"):
        for p in (values.get(stage) or {}).get("phases", []):
            if isinstance(p, dict) and isinstance(p.get("mix"), dict) and "frozen" not in p:
                p["frozen"] = "vision,merger" if p["mix"].get("source") == "drill" else ""
            if isinstance(p, dict) and isinstance(p.get("check"), dict) and "only" not in p["check"]:
                p["check"]["only"] = "read_one" if p["check"].get("measure") == "sft_read" else ""
    return values
