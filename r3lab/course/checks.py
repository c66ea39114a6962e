"""The exercises' checks: one function per exercise that has one, registered under its key ("20.1").

Each takes what the student computed (a log, an evaluation, a trajectory, a number they worked out) and holds it
to what a right answer must satisfy, computed from the library rather than written down: it returns what passed,
or raises `NotYet` with what is wrong. `r3lab.course.check(key, ...)` runs one and prints the verdict.
"""

from __future__ import annotations

from typing import Callable

CHECKS: dict[str, Callable] = {}


class NotYet(AssertionError):
    """An exercise's check found something wrong; the message says what."""


def checker(key: str):
    """Register the check of exercise `key` ("20.1")."""

    def register(fn):
        CHECKS[key] = fn
        return fn

    return register


def need(ok: bool, message: str) -> None:
    """Raise `NotYet(message)` unless `ok`."""
    if not ok:
        raise NotYet(message)
