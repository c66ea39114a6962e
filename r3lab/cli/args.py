"""Command-line flags built from the configuration dataclasses: one `--field-name` flag per field.

Types come from the annotations, help from each field's trailing `# comment` (the one place its
meaning is written); a field may name its own parser in its metadata (`resume`: true / false / auto).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import types
import typing


def field_help(cls) -> dict[str, str]:
    """Each field's trailing `# comment` in the dataclass source (the one place the meaning is written)."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    pat = re.compile(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$")
    return {m.group(1): m.group(2).strip() for m in map(pat.match, src.splitlines()) if m}


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", defaults=None) -> None:
    """One `--field-name` flag per dataclass field, typed from the annotations, help from trailing comments.

    A field holding a dataclass gives its fields flags under its name (`lora: LoRAConfig` -> `--lora-r`), with
    the defaults of the outer field's default object (`defaults`)."""
    hints = typing.get_type_hints(cls)
    comments = field_help(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        default = getattr(defaults, f.name) if defaults is not None else \
            f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if dataclasses.is_dataclass(tp):  # a nested settings object: its fields under the field's name
            add_dataclass_arguments(parser, tp, prefix + f.name.replace("_", "-") + "-", defaults=default)
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        base = _base_type(tp)
        # argparse %-formats help strings: a literal "%" in a comment ("% of box centres") must be doubled
        help_ = ((f.metadata.get("help") or comments.get(f.name, "")) + f" (default: {default!r})").replace("%", "%%")
        if "type" in f.metadata:  # the field names its own parser (e.g. resume: true / false / auto)
            parser.add_argument(flag, type=f.metadata["type"], default=default, metavar=f.metadata.get("metavar"),
                                help=help_, dest=prefix.replace("-", "_") + f.name)
        elif base is bool:
            parser.add_argument(flag, type=parse_bool, default=default, metavar="BOOL", help=help_,
                                dest=prefix.replace("-", "_") + f.name)
        elif base in (int, float, str):
            parser.add_argument(flag, type=base, default=default, help=help_, dest=prefix.replace("-", "_") + f.name)
        else:  # lists and nested types: given as JSON
            parser.add_argument(flag, type=parse_json, default=default, metavar="JSON", help=help_,
                                dest=prefix.replace("-", "_") + f.name)


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    kw = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix.replace("-", "_") + f.name
        if f.init and dataclasses.is_dataclass(hints[f.name]):
            kw[f.name] = dataclass_from_args(hints[f.name], args, prefix + f.name.replace("_", "-") + "-")
        elif f.init and hasattr(args, key):
            kw[f.name] = getattr(args, key)
    return cls(**kw)


def _base_type(tp):
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return tp if tp in (bool, int, float, str) else None


def parse_bool(s: str) -> bool:
    v = s.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def parse_json(s: str):
    try:
        return json.loads(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON value, got {s!r}: {e}") from None
