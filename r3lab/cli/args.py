"""Command-line flags built from the configuration dataclasses: one `--field-name` flag per field, and one per
field of a nested settings object (prefixed where a config holds two, e.g. the recipe's train and eval rollouts).

Types come from the annotations; help from the field's `metadata["help"]`, else its attribute docstring (the string
right below the field, which IDEs and the API pages show too; `field_help`); a field may name its own parser in its
metadata (`resume`: true / false / auto). Comments are never read: `tests/cli/test_args.py` holds every flag to help.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing

from ..core.settings import short

DTYPES = ("", "float32", "bfloat16", "float16")  # what --dtype may load or write weights as ("": as saved)


def field_help(cls) -> dict[str, str]:
    """Each field's help: its attribute docstring (a string statement right below the field), read with `ast`; a
    base class's for the fields it declares (a subclass's own wins)."""
    out = {}
    for klass in reversed([k for k in getattr(cls, "__mro__", (cls,)) if dataclasses.is_dataclass(k)]):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
        own = {}
        for stmt, nxt in zip(body, body[1:] + [None]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                own[stmt.target.id] = " ".join(nxt.value.value.split())
        out.update(own)
    return out


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls, prefix: str = "", defaults=None, skip: tuple = (), given_only: bool = False
) -> None:
    """One `--field-name` flag per dataclass field (but those in `skip`), typed from the annotations, help from
    docstrings (`field_help`); with `given_only` a flag not given leaves its field out of the parsed namespace.

    A nested settings field (`r3lab.core.settings.nested`) gives one flag per field of its settings object,
    prefixed by the field's `flags` (the recipe's `--train-max-crops` / `--eval-max-crops`), with the defaults
    of the object the field holds by default."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        if "nested" in f.metadata:
            add_dataclass_arguments(
                parser, f.metadata["nested"], prefix + f.metadata["flags"], _default(f, defaults), given_only=given_only
            )
            continue
        tp = hints[f.name]
        flag = "--" + prefix + f.name.replace("_", "-")
        default = getattr(defaults, f.name) if defaults is not None else _default(f)
        dest = prefix.replace("-", "_") + f.name
        base = _base_type(tp)
        # argparse %-formats help strings: a literal "%" in a comment ("% of box centres") must be doubled
        help_ = ((f.metadata.get("help") or helps.get(f.name, "")) + f" (default: {default!r})").replace("%", "%%")
        default = argparse.SUPPRESS if given_only else default
        if "type" in f.metadata:  # the field names its own parser (e.g. resume: true / false / auto)
            parser.add_argument(
                flag, type=f.metadata["type"], default=default, metavar=f.metadata.get("metavar"), help=help_, dest=dest
            )
        elif base is bool:
            parser.add_argument(flag, type=parse_bool, default=default, metavar="BOOL", help=help_, dest=dest)
        elif base in (int, float, str):
            parser.add_argument(flag, type=base, default=default, help=help_, dest=dest)
        else:  # lists and nested types: given as JSON
            parser.add_argument(flag, type=parse_json, default=default, metavar="JSON", help=help_, dest=dest)


def dataclass_values(cls, args: argparse.Namespace, prefix: str = "", skip: tuple = ()) -> dict:
    """The flags of `cls`'s fields (but those in `skip`) as keyword values, nested settings as dicts (what
    `cls(**values)` reads)."""
    kw = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        if "nested" in f.metadata:
            kw[f.name] = dataclass_values(f.metadata["nested"], args, prefix + f.metadata["flags"])
            continue
        key = prefix.replace("-", "_") + f.name
        if hasattr(args, key):
            kw[f.name] = getattr(args, key)
    return kw


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    return cls(**dataclass_values(cls, args, prefix))


def _default(f: dataclasses.Field, holder=None):
    """A field's default: the value `holder` (a default settings object) gives it, else its own default."""
    if holder is not None:
        return getattr(holder, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


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
    raise argparse.ArgumentTypeError(f"expected true/false, got {short(s)}")


def parse_json(s: str):
    """A JSON flag's value, held to the config reader's rules (size, no key twice, finite numbers)."""
    from ..core.config_file import parse_value

    try:
        return parse_value(s, "a JSON value")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
