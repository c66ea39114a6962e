"""A notebook's parameters checked before it runs: names and types against `papermill.inspect_notebook` (papermill
itself only logs unknown ones), numbers against the range their help comment states (`# optimizer steps, 1..2000`),
and what smoke mode replaces (`r3lab.course.SMOKE`, parameters marked "(default mode only)")."""

from __future__ import annotations

import math
import re
from pathlib import Path

from .lesson import SMOKE

_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


class ParameterError(ValueError):
    """A parameter a notebook does not declare, of the wrong type, or outside its stated range."""


_RANGE = re.compile(r"(-?[\d.]+(?:e-?\d+)?)\.\.(-?[\d.]+(?:e-?\d+)?)\s*$")
DEFAULT_ONLY = "(default mode only)"  # a help comment's mark: smoke mode does not use this parameter


def bounds(help_text: str) -> tuple[float, float] | None:
    """The range a parameter's help comment ends with (`# optimizer steps, 1..2000`), or None."""
    m = _RANGE.search(help_text or "")
    return (float(m[1]), float(m[2])) if m else None


def smoke_replaces(path: Path, given: dict) -> dict:
    """The given parameters smoke mode does not run with: {name: (given, what smoke runs instead)} (the lesson's
    sizes in `SMOKE`, and parameters marked "(default mode only)")."""
    decl = declared(path)
    small = SMOKE.get(path.stem, {})
    out = {}
    for name, value in given.items():
        if name in small and small[name] != value:
            out[name] = (value, small[name])
        elif DEFAULT_ONLY in (decl.get(name) or {}).get("help", ""):
            out[name] = (value, "not used in smoke mode")
    return out


def parse_value(text: str):
    """Like `papermill -p`: True/False/None, ints and floats become Python values, the rest strings."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def declared(path: Path) -> dict:
    import papermill

    return papermill.inspect_notebook(str(path))


def check_parameters(path: Path, params: dict) -> dict:
    """Refuse names the notebook does not declare and values of the wrong type; returns coerced values."""
    decl = declared(path)
    real = ", ".join(f"{n}: {d['inferred_type_name']} = {d['default']}" for n, d in decl.items())
    out = {}
    for name, value in params.items():
        if name not in decl:
            raise ParameterError(f"{path.name} has no parameter {name!r}. Its parameters are: {real}")
        want = _TYPES.get(decl[name]["inferred_type_name"])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is str and value is not None and not isinstance(value, str):
            value = str(value)
        if want is not None and not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ParameterError(
                f"{path.name}: parameter {name!r} must be {want.__name__}, got {value!r}. Its parameters are: {real}"
            )
        if want is float and not math.isfinite(value):  # papermill types "nan" as a float; no lesson takes one
            raise ParameterError(f"{path.name}: parameter {name!r} must be a finite number, got {value!r}")
        span = bounds(decl[name].get("help", "")) if want in (int, float) else None
        if span is not None and not span[0] <= value <= span[1]:
            lo, hi = (int(v) if want is int else v for v in span)
            raise ParameterError(
                f"{path.name}: parameter {name!r} must be within {lo}..{hi} ({decl[name]['help']}), got {value!r}"
            )
        out[name] = value
    return out
