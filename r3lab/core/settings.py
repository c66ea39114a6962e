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
from typing import Sequence

POSITIVE = (1, None)  # integer ranges: (low, high), inclusive; None = unbounded
RATE = (0.0, 1.0)  # learning rates: a finite number in [0, 1] (NaN, inf, 1e30 and negatives are typos)
SHARE = (0.0, 1.0)  # a share of something: [0, 1]


def check_ranges(cfg, ints: dict[str, tuple] | None = None, floats: dict[str, tuple] | None = None,
                 open_low: Sequence[str] = (), open_high: Sequence[str] = ()) -> None:
    """ValueError naming the field, its value and the allowed range, for the first setting outside it.

    `ints` / `floats` map a field to (low, high), inclusive unless the field is in `open_low` /
    `open_high`; None is unbounded. Floats must also be finite: one NaN setting makes the whole run NaN.
    """
    ints, floats = ints or {}, floats or {}
    for name, (lo, hi) in {**ints, **floats}.items():
        v = getattr(cfg, name)
        integer = name in ints
        ok = (isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real)) and not isinstance(v, bool)
        ok = ok and math.isfinite(v) and (lo is None or (v > lo if name in open_low else v >= lo)) \
            and (hi is None or (v < hi if name in open_high else v <= hi))
        if not ok:
            span = f"{'(' if name in open_low or lo is None else '['}{'-inf' if lo is None else lo}, " \
                   f"{'inf' if hi is None else hi}{')' if name in open_high or hi is None else ']'}"
            raise ValueError(f"{type(cfg).__name__}.{name} = {v!r} is not allowed: expected "
                             f"{'an integer' if integer else 'a finite number'} in {span}")


def check_choice(cfg, name: str, choices: Sequence) -> None:
    """ValueError naming the field, its value and the choices, when the value is not one of them."""
    v = getattr(cfg, name)
    if v not in choices:
        raise ValueError(f"{type(cfg).__name__}.{name} = {v!r} is not allowed: expected one of "
                         f"{', '.join(map(repr, choices))}")


def nested(cls, flags: str = "", **defaults) -> dataclasses.Field:
    """A field holding a `cls` settings object (default: `cls(**defaults)`); its command-line flags are its
    fields' names prefixed with `flags` (e.g. "train-": `--train-max-crops`)."""
    return dataclasses.field(default_factory=lambda: cls(**defaults),
                             metadata={"nested": cls, "flags": flags, "defaults": defaults})


def from_dict(cls, values: dict, where: str):
    """`cls(**values)`, naming unknown fields and, in a bad value's message, where the values came from."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    if bad := sorted(set(values) - known):
        raise ValueError(f"unknown {cls.__name__} fields {bad} in {where}; known: {sorted(known)}")
    try:
        return cls(**values)
    except ValueError as e:
        msg = str(e)
        raise ValueError(where + msg[len(cls.__name__):] if msg.startswith(cls.__name__ + ".") else msg) from None


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
            raise ValueError(f"{where} must be a {cls.__name__} (or a dict of its fields), got {value!r}")
