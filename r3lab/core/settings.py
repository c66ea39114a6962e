"""Settings objects: one check for the numbers of every config, nested sub-settings, and their reading from dicts.

A config that holds another (the rollout settings in every config that rolls out, the reward specification in
every config that scores) declares it with `nested(cls, flags=...)`: the field's default is an instance with the
given defaults, a dict given in its place (JSON, a saved config) is read into one over those defaults, and the
command line builds one flag per sub-field, prefixed by `flags` (`r3lab.cli.args`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import reprlib
from typing import Sequence

POSITIVE = (1, None)  # integer ranges: (low, high), inclusive; None = unbounded
RATE = (0.0, 1.0)  # learning rates: a finite number in [0, 1] (NaN, inf, 1e30 and negatives are typos)
SHARE = (0.0, 1.0)  # a share of something: [0, 1]
SEED = (0, 2**32 - 1)  # a seed: numpy's range (offsets are added to it, torch takes up to 2^64)
STEPS = (0, 10**6)  # optimizer or rollout steps of one run or phase: a million is weeks on a GPU; more is a typo
MAX_ROWS = 4096  # samples or trajectories one process holds in one step (a batch is built at once)
WHY = {
    "seed": "a seed is a 32-bit number, numpy's range",
    "steps": "a million steps is weeks of a GPU; more is a typo",
    "batch": f"a step's batch is built in memory at once: at most {MAX_ROWS} rows a process",
    "questions": "each question is a rollout: more is a typo",
    "pixels": "an image's pixels are held in memory; 2^28 is a 16k x 16k image",
}
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxset = 3, 6, 6, 6, 6
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def short(value, limit: int = 120) -> str:
    """`repr(value)` cut short (reprlib: a few items per level, a few levels, long strings and numbers elided), so a
    message never grows with what it shows: a hostile value of gigabytes (a YAML alias bomb, a 50 MB string) is
    printed in a line."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"
    try:
        text = _SHORT.repr(value)
    except Exception:  # an int too long for str(), an object whose repr fails
        text = f"<{type(value).__name__}" + (f" of {value.bit_length()} bits>" if isinstance(value, int) else ">")
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


def check_ranges(
    cfg,
    ints: dict[str, tuple] | None = None,
    floats: dict[str, tuple] | None = None,
    open_low: Sequence[str] = (),
    open_high: Sequence[str] = (),
    why: dict[str, str] | None = None,
) -> None:
    """ValueError naming the field, its value and the allowed range, for the first setting outside it.

    `ints` / `floats` map a field to (low, high), inclusive unless the field is in `open_low` /
    `open_high`; None is unbounded. Floats must also be finite: one NaN setting makes the whole run NaN.
    `why` gives, per field, the reason for its bound (said after the range).
    """
    ints, floats = ints or {}, floats or {}
    for name, (lo, hi) in {**ints, **floats}.items():
        v = getattr(cfg, name)
        integer = name in ints
        ok = (isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)) and not isinstance(v, bool)
        ok = (
            ok
            and _finite(v)
            and (lo is None or (v > lo if name in open_low else v >= lo))
            and (hi is None or (v < hi if name in open_high else v <= hi))
        )
        if not ok:
            span = (
                f"{'(' if name in open_low or lo is None else '['}{'-inf' if lo is None else lo}, "
                f"{'inf' if hi is None else hi}{')' if name in open_high or hi is None else ']'}"
            )
            raise ValueError(
                f"{type(cfg).__name__}.{name} = {short(v)} is not allowed: expected "
                f"{'an integer' if integer else 'a finite number'} in {span}"
                + (f" ({why[name]})" if why and name in why else "")
            )


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond a float's range: finite, and held to the bounds as it stands
        return True


def check_bools(cfg, *names: str) -> None:
    """ValueError naming the first of `names` whose value is not True or False ("yes", 1 and None are typos: a
    string is always true)."""
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, bool):
            raise ValueError(f"{type(cfg).__name__}.{name} = {short(v)} is not allowed: expected true or false")


def check_text(cfg, name: str, limit: int, empty: bool = True) -> None:
    """ValueError naming the field when its value is not text, is empty (unless `empty`) or is longer than
    `limit` characters."""
    v = getattr(cfg, name)
    if not isinstance(v, str) or (not empty and not v.strip()) or len(v) > limit:
        raise ValueError(
            f"{type(cfg).__name__}.{name} = {short(v)} is not allowed: expected "
            f"{'' if empty else 'non-empty '}text of at most {limit:,} characters"
            + (f" (got {len(v):,})" if isinstance(v, str) else "")
        )


def check_choice(cfg, name: str, choices: Sequence) -> None:
    """ValueError naming the field, its value and the choices, when the value is not one of them."""
    v = getattr(cfg, name)
    if v not in choices:
        raise ValueError(
            f"{type(cfg).__name__}.{name} = {short(v)} is not allowed: expected one of {', '.join(map(repr, choices))}"
        )


def nested(cls, flags: str = "", **defaults) -> dataclasses.Field:
    """A field holding a `cls` settings object (default: `cls(**defaults)`); its command-line flags are its
    fields' names prefixed with `flags` (e.g. "train-": `--train-max-crops`)."""
    return dataclasses.field(
        default_factory=lambda: cls(**defaults), metadata={"nested": cls, "flags": flags, "defaults": defaults}
    )


def from_dict(cls, values: dict, where: str):
    """`cls(**values)`, naming unknown fields and, in a bad value's message, where the values came from."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    known = {f.name for f in fields}
    if bad := sorted(set(values) - known, key=str):
        raise ValueError(f"unknown {cls.__name__} fields {short(bad)} in {where}; known: {sorted(known)}")
    if missing := [
        f.name
        for f in fields
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]:
        raise ValueError(f"{where}: a {cls.__name__} needs {', '.join(missing)}; give it whole")
    try:
        return cls(**values)
    except ValueError as e:
        msg = str(e)
        raise ValueError(where + msg[len(cls.__name__) :] if msg.startswith(cls.__name__ + ".") else msg) from None


def read_nested(cfg) -> None:
    """Each `nested` field of `cfg` given as a dict becomes its settings object, over the field's defaults
    (call first in `__post_init__`); one given as anything else but that object is a ValueError."""
    for f in dataclasses.fields(cfg):
        cls = f.metadata.get("nested")
        if cls is None:
            continue
        value, where = getattr(cfg, f.name), f"{type(cfg).__name__}.{f.name}"
        if isinstance(value, dict):
            setattr(cfg, f.name, from_dict(cls, {**f.metadata["defaults"], **value}, where))
        elif not isinstance(value, cls):
            raise ValueError(f"{where} must be a {cls.__name__} (or a dict of its fields), got {short(value)}")
