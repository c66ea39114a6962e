"""A lesson's claims hold at its defaults: its last cell asserts them when the run's parameters are the ones its
notebook declares, and otherwise says in one line which parameters changed, instead of failing an assertion that was
never meant for that size (`r3lab notebooks run 20 -p steps 5`, a student's edited parameters cell, smoke mode)."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..core.env import NOTEBOOKS

WHERE = ("device", "out", "out_dir")  # parameters that say where a run goes or runs, not what it computes


def defaults(lesson: str, folder: Path | None = None) -> dict:
    """The values the parameters cell of `<folder>/<lesson>.ipynb` declares (the course's own copy by default, so a
    student's edits to theirs count as changes)."""
    path = Path(folder or NOTEBOOKS) / f"{lesson}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return {
        node.target.id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }


def changed(lesson: str, values: Mapping, modes: Iterable[str] = (), folder: Path | None = None) -> dict:
    """{name: (this run's value, the default)} for each parameter of the lesson this run set otherwise; `modes` names
    parameters whose other values are modes the last cell asserts claims of its own for (never counted)."""
    skip = {*WHERE, *modes}
    return {
        name: (values[name], default)
        for name, default in defaults(lesson, folder).items()
        if name not in skip and name in values and values[name] != default
    }


def at_defaults(lesson: str, values: Mapping, modes: Iterable[str] = (), folder: Path | None = None) -> bool:
    """True when this run's parameters (`globals()` in a lesson) are the lesson's defaults, where its claims hold;
    otherwise prints which parameters changed and returns False, so the claims are not asserted at another size."""
    try:
        diff = changed(lesson, values, modes, folder)
    except (OSError, ValueError, SyntaxError) as e:  # the course's copy is missing: assert as at the defaults
        print(f"the defaults of {lesson} could not be read ({e}): its claims are asserted as at its defaults")
        return True
    if diff:
        said = ", ".join(f"{name}={new!r} (default {old!r})" for name, (new, old) in diff.items())
        print(f"{lesson}'s claims are asserted at its defaults; this run changed {said}: they are not asserted here")
    return not diff
