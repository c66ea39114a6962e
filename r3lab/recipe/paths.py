"""A recipe setting named by its path: the one home of reading, setting and listing settings that way.

A path names a field of `RecipeConfig` (`n_train`), a stage's own setting (`base.batch`, `rgrpo.steps`) or a
phase's by the phase's name, in any stage (`read.steps`, `compare.check.bar`, `sft.mix.weights`). `--set PATH=VALUE`,
the per-phase flags (`flag_of`), format 1's names (`format_1.ALIASES`) and a folder's recipe.json compared setting
by setting (`by_path`) all speak it. `values` is RecipeConfig's fields as plain values (`dataclasses.asdict`).
"""

from __future__ import annotations

from ..core.settings import short

STAGES = ("base", "sft")  # the stages of phases
CURRICULUM = ("base", "sft", "rgrpo")  # the fields a path's first part may name besides a phase


def _phases(values: dict) -> list[dict]:
    return [p for st in STAGES for p in values[st]["phases"]]


def _stage_setting(values: dict, head: str, rest: str) -> bool:
    return head in CURRICULUM and rest in values[head] and rest != "phases"


def get_setting(values: dict, path: str):
    """The setting at `path` in `values`; ValueError naming what exists where it does not."""
    head, _, rest = path.partition(".")
    if not rest and head in values:
        return values[head]
    if _stage_setting(values, head, rest):
        return values[head][rest]
    obj, _ = _walk(values, path)
    return obj[path.rsplit(".", 1)[1]]


def set_setting(values: dict, path: str, value) -> None:
    """Set `path` in `values` in place (a stage's own setting, or a phase's: "sft.steps" is the phase sft's)."""
    head, _, rest = path.partition(".")
    if not rest and head in values:
        values[head] = value
    elif _stage_setting(values, head, rest):
        values[head][rest] = value
    elif head == "rgrpo":
        raise ValueError(f"{short(path)}: rgrpo has no setting {short(rest)}; known: {sorted(values['rgrpo'])}")
    else:
        obj, _ = _walk(values, path)
        obj[path.rsplit(".", 1)[1]] = value


def _walk(values: dict, path: str) -> tuple[dict, str]:
    """The dict that holds `path`'s last part, and where it is (checked to hold it)."""
    name, *rest = path.split(".")
    phases = _phases(values)
    phase = next((p for p in phases if p["name"] == name), None)
    if phase is None or not rest:
        raise ValueError(f"{short(path)} names no phase's setting: the phases are {[p['name'] for p in phases]}")
    obj, where = phase, name
    for key in rest[:-1]:
        if not isinstance(obj, dict):
            raise ValueError(f"{short(path)}: {where} is a value, it has no setting {short(key)}")
        if key not in obj:
            raise ValueError(f"{short(path)}: {where} has no setting {short(key)}; known: {sorted(obj)}")
        if obj[key] is None:
            raise ValueError(
                f"{short(path)}: phase {short(name)} has no {key}: give it whole ({where}.{key} = {{...}})"
            )
        obj, where = obj[key], f"{where}.{key}"
    if not isinstance(obj, dict):
        raise ValueError(f"{short(path)}: {where} is a value, it has no setting {short(rest[-1])}")
    if rest[-1] not in obj:
        raise ValueError(f"{short(path)}: {where} has no setting {short(rest[-1])}; known: {sorted(obj)}")
    return obj, where


def by_path(values: dict) -> dict:
    """Every setting of `values` by its path (a phase's mix and check one by one, `<stage>.phases` the list of a
    stage's phase names; where a phase's reason is written trains nothing, so `why` is left out)."""
    out = {}
    for k, v in values.items():
        if k in STAGES:
            out[f"{k}.batch"] = v["batch"]
            out[f"{k}.phases"] = [p["name"] for p in v["phases"]]
            for p in v["phases"]:
                for key, x in p.items():
                    if key in ("mix", "check") and isinstance(x, dict):
                        out.update({f"{p['name']}.{key}.{s}": y for s, y in x.items()})
                    elif key not in ("name", "why"):
                        out[f"{p['name']}.{key}"] = x
        elif k == "rgrpo":
            out.update({f"rgrpo.{s}": y for s, y in v.items()})
        else:
            out[k] = v
    return out


CHECK_FLAG = {
    "n": "check",
    "bar": "bar",
    "more": "more",
    "rounds": "rounds",
    "early": "early",
    "ground_bar": "ground-bar",
}  # a check's setting -> its flag's suffix (--read-check N: read.check.n)


def flag_of(path: str) -> str:
    """The `r3lab recipe` flag that sets `path` (`--read-bar` for read.check.bar; `--set PATH=VALUE` where none)."""
    parts = path.split(".")
    dash = parts[0].replace("_", "-")
    if len(parts) == 1:
        return f"--{dash}"
    if parts[0] == "rgrpo" or parts[1] in ("batch", "steps", "lr") and len(parts) == 2:
        return f"--{dash}-{parts[1].replace('_', '-')}"
    if parts[1] == "check" and len(parts) == 3 and parts[2] in CHECK_FLAG:
        return f"--{dash}-{CHECK_FLAG[parts[2]]}"
    if parts[1] == "mix" and len(parts) == 3:
        return f"--{dash}-mix '{{\"{parts[2]}\": ...}}'"
    return f"--set {path}=..."
