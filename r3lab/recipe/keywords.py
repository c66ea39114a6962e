"""A recipe's keywords read into `RecipeConfig`'s field values: its fields (a stage given as a dict read over the
default), settings by path (`read.check.bar`) and format 1's flat names (`format_1.ALIASES`, warned): the one door
`RecipeConfig.from_settings` opens for the CLI, `--config` and stored files."""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from dataclasses import asdict

from ..core.settings import from_dict, short
from .curriculum import RGRPOStage, Stage
from .format_1 import ALIASES, from_flat
from .paths import CURRICULUM, flag_of, set_setting


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def resolve(cls: type, settings: dict) -> tuple[dict, list[tuple]]:
    """RecipeConfig's (`cls`'s) field values from keywords (fields, format-1 names, paths); and the paths given."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    old = {k: v for k, v in settings.items() if k in ALIASES}
    paths = {k: v for k, v in settings.items() if "." in k}
    given = {k: v for k, v in settings.items() if k in fields}
    if unknown := sorted(set(settings) - set(old) - set(paths) - set(given)):
        near = {k: difflib.get_close_matches(k, [*fields, *ALIASES], 1) if len(k) < 100 else [] for k in unknown[:10]}
        raise ValueError(
            "unknown recipe settings "
            + ", ".join(f"{short(k)}" + (f" (did you mean {n[0]!r}?)" if n else "") for k, n in near.items())
            + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        )
    plain = {k: asdict(_default(fields[k])) for k in CURRICULUM}
    if old:
        if clash := [k for k in CURRICULUM if k in given]:
            raise ValueError(
                f"the curriculum given both whole ({', '.join(clash)}) and by format-1 names "
                f"({', '.join(sorted(old))}): give it one way"
            )
        if both := sorted((k, p) for k in old for p in ALIASES[k] if p in paths):
            raise ValueError(
                "given both by format 1's name and by today's path (format 1's would be ignored): "
                + ", ".join(f"{k} and {p} ({flag_of(p)})" for k, p in both)
                + "; give today's only"
            )
        warnings.warn(
            "format 1's names go in r3lab 0.3; today's paths: "
            + ", ".join(
                f"{k} (--{k.replace('_', '-')}) -> {' + '.join(f'{p} ({flag_of(p)})' for p in ALIASES[k])}"
                for k in sorted(old)
            ),
            FutureWarning,
            stacklevel=3,
        )
        plain = from_flat(old, plain)
    for k, cls in (("base", Stage), ("sft", Stage), ("rgrpo", RGRPOStage)):
        if k in given:  # a dict is read over the default (its phases, when given, replace the default's)
            v = given.pop(k)
            if not isinstance(v, (dict, cls)):
                raise ValueError(
                    f"RecipeConfig.{k} = {short(v)} is not allowed: expected a {cls.__name__} or a "
                    "mapping of its settings"
                )
            plain[k] = asdict(from_dict(cls, {**plain[k], **v}, f"RecipeConfig.{k}") if isinstance(v, dict) else v)
    for path, v in paths.items():
        set_setting(plain, path, v)
    values = {**plain, **given}
    touched = [(p, v) for k, v in old.items() for p in ALIASES[k]] + list(paths.items())
    return values, touched
