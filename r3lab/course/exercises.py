"""Exercises a student can check: each lesson's exercises as data, their expected outputs, and `check`.

A lesson's Exercises cell lists them in one form, read here (`exercises`) and by the instructor's pages:

    1. **Freeze the vision side** · ●●○ · 10 min · CPU
       What to do and what to answer ...
       *Check:* `check("20.1", ...)`
       <details><summary>Expected output (default run)</summary>

       <!-- expected:20.1 -->...<!-- /expected -->
       </details>

Difficulty is one to three filled dots; the minutes are a student's budget at the lesson's default sizes (running
and reading); hardware is "CPU", or what else it needs (a GPU, a checkpoint). The expected output is what the
solution printed at default sizes, recorded from `make solutions` into `expected.json` (`record_expected`) and
written into the lesson by `python -m r3lab.course.syllabus`. `check(key, ...)` runs the exercise's check on what the
student computed and prints a pass, or what is wrong; the checks are in `r3lab.course.checks`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.settings import short
from .checks import CHECKS, NotYet

EXPECTED = Path(__file__).with_name("expected.json")  # exercise key -> the solution's output at default sizes
META = re.compile(r"^(\d+)\. \*\*(.+?)\*\* · ([●○]{3}) · (\d+) min · (.+?)\s*$", re.M)
CHECK_CALL = re.compile(r"check\(\"(\d\d\.\d+)\"")


@dataclass(frozen=True)
class Exercise:
    lesson: str  # notebook stem
    n: int
    title: str
    difficulty: int  # 1 (a few lines, one idea) to 3 (a design choice, a longer run)
    minutes: int  # a student's budget at default sizes, running and reading
    hardware: str  # "CPU", or what more it needs
    text: str  # the exercise as the lesson states it
    check: str | None  # the key `check` takes ("20.1"), if the exercise has one

    @property
    def key(self) -> str:
        return f"{self.lesson[:2]}.{self.n}"


def exercises(notebook: str | Path) -> list[Exercise]:
    """The exercises of a notebook (its markdown under the "Exercises" heading), in order."""
    import nbformat

    path = Path(notebook)
    md = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "markdown")
    parts = re.split(r"(?im)^#+ .*exercises.*$", md)
    if len(parts) < 2:
        return []
    section = parts[-1]
    heads = list(META.finditer(section))
    out = []
    for i, m in enumerate(heads):
        body = section[m.end() : heads[i + 1].start() if i + 1 < len(heads) else len(section)]
        call = CHECK_CALL.search(body)
        out.append(
            Exercise(
                path.stem, int(m[1]), m[2], m[3].count("●"), int(m[4]), m[5], body.strip(), call[1] if call else None
            )
        )
    return out


def numbered(notebook: str | Path) -> list[int]:
    """Every numbered item under the Exercises heading (to find one written outside the form)."""
    import nbformat

    md = "\n".join(c.source for c in nbformat.read(str(notebook), as_version=4).cells if c.cell_type == "markdown")
    section = re.split(r"(?im)^#+ .*exercises.*$", md)[-1]
    return [int(n) for n in re.findall(r"(?m)^(\d+)\. ", section)]


def expected(key: str, path: Path = EXPECTED) -> str:
    """The expected output of exercise `key` as the solutions' default run recorded it."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    return data.get(
        key,
        "not recorded yet: run `make solutions`, then `python -m r3lab.course.syllabus --expected "
        "runs/main/solutions/results.json`",
    )


def record_expected(results_json: str | Path, path: Path = EXPECTED) -> dict[str, str]:
    """Record the expected outputs a default solutions run reported (`report(expected_20_1="...")`); smoke runs and
    failed notebooks record nothing. Returns what was recorded."""
    rows = json.loads(Path(results_json).read_text())
    data = json.loads(path.read_text()) if path.is_file() else {}
    done = {}
    for r in rows:
        if not r.get("ok") or (r.get("parameters") or {}).get("smoke"):
            continue
        for k, v in (r.get("numbers") or {}).items():
            m = re.fullmatch(r"expected_(\d\d)_(\d+)", k)
            if m and isinstance(v, str):
                data[f"{m[1]}.{m[2]}"] = done[f"{m[1]}.{m[2]}"] = v
    path.write_text(json.dumps(dict(sorted(data.items())), indent=1, ensure_ascii=False) + "\n")
    return done


def check(key: str, *args, **kwargs) -> bool:
    """Run exercise `key`'s check on the student's work: prints a pass, or what is wrong, and returns which. Whatever
    it is given, it answers with a line (✗ and a hint for something it cannot use), never a traceback."""
    # each module registers its lessons' checks
    from . import checks_audit, checks_early, checks_explain, checks_replication, checks_train  # noqa: F401

    if not isinstance(key, str) or key not in CHECKS:
        print(
            f"✗ no check for exercise {short(key)}; the checks are {', '.join(sorted(CHECKS))}: call it as "
            'check("20.1", ...) with the key the exercise names'
        )
        return False
    import inspect

    fn = CHECKS[key]
    sig = inspect.signature(fn)
    takes = (
        f"it takes check({short(key)}, "
        + ", ".join(
            p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
            for p in sig.parameters.values()
        )
        + ")"
    )
    try:
        given = sig.bind(*args, **kwargs)
    except TypeError as e:  # called with the wrong things: say what it takes
        print(f"✗ exercise {key}: {e}; {takes}")
        return False
    try:
        said = fn(*args, **kwargs)
    except NotYet as e:
        print(f"✗ exercise {key} not yet: {_cut(str(e))}")
        return False
    except Exception as e:  # noqa: BLE001 - what a student passes is input: a wrong type gets a hint, not a traceback
        got = ", ".join(f"{k}={short(v, 60)} ({type(v).__name__})" for k, v in given.arguments.items())
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        print(
            f"✗ exercise {key}: what it was given is not what it reads ({type(e).__name__}: {short(str(e), 160)}). "
            f"You passed {got}; {takes}: {doc}"
        )
        return False
    print(f"✓ exercise {key} passed" + (f": {_cut(str(said))}" if said else ""))
    return True


def _cut(text: str, limit: int = 2000) -> str:
    """A hint cut short: one that quotes what the student passed (a family named by 70,000 characters) stays a line."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
