"""The lessons' measured times, kept in one file (`times.json` beside this module) and written only by a run.

`r3lab notebooks run --record-times` (or `python -m r3lab.course.syllabus --times RUN/results.json`) records a
run's wall and CPU seconds per lesson into the column its run belongs to: `default_s` (and `cpu_s`) for a default
run on a CPU, `gpu_s` for a default run whose kernel had a CUDA GPU, `smoke_s` for a smoke run. Every statement of
time in the course (notebook headers, the README, notebooks/README.md, the instructor's pages, the site) is drawn
from here by `r3lab.course.syllabus`, so a lesson's time is measured once and written nowhere by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TIMES = Path(__file__).with_name("times.json")
COLUMNS = {  # column -> what it measures
    "default_s": "wall seconds of the default run on the reference CPU (2 cores, one OpenMP thread)",
    "cpu_s": "CPU seconds (user + system, the kernel's) of that run: what a busy machine cannot hide",
    "gpu_s": "wall seconds of the default run with a CUDA GPU (device='auto')",
    "smoke_s": "wall seconds in smoke mode, as CI runs it",
}
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def load(path: Path = TIMES) -> dict:
    return json.loads(Path(path).read_text())


def seconds(notebook: str, column: str, path: Path = TIMES, required: bool = True) -> float | None:
    """A lesson's measured seconds in `column`; a missing one is an error naming the command that records it
    (or None when not `required`: the GPU column exists only where a GPU ran the series)."""
    if column not in COLUMNS:
        raise ValueError(f"no time column {column!r}; the columns are {', '.join(COLUMNS)}")
    entry = load(path)["lessons"].get(notebook, {})
    if entry.get(column) is None:
        if not required:
            return None
        raise KeyError(
            f"{path}: no {column} for {notebook}; record a run: r3lab notebooks run --record-times "
            "(or python -m r3lab.course.syllabus --times runs/main/results.json)"
        )
    return float(entry[column])


def fmt(s: float | None) -> str:
    """Seconds for a reader: under a minute as seconds, else minutes to one decimal; '–' when not measured."""
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 60 else f"{s / 60:.1f} min"


def number_word(n: int) -> str:
    return WORDS[n] if 0 <= n < len(WORDS) else str(n)


def column_of(row: dict) -> str:
    """The column a runner's result row belongs to: smoke, a GPU run, or a default CPU run."""
    params = row.get("parameters") or {}
    if params.get("smoke"):
        return "smoke_s"
    on_gpu = (row.get("machine") or {}).get("gpu") and params.get("device", "auto") != "cpu"
    return "gpu_s" if on_gpu else "default_s"


def times_from_run(results_json: str | Path) -> dict[str, float]:
    """Wall seconds per notebook from a runner's `results.json` (`r3lab notebooks run --out DIR`)."""
    return {r["name"]: float(r["seconds"]) for r in _rows(results_json)}


def _rows(results_json: str | Path) -> list[dict]:
    path = Path(results_json)
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{path}: not a runner's results.json ({e}); run `r3lab notebooks run --out DIR` first"
        ) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r and "seconds" in r for r in rows):
        raise ValueError(f"{path}: expected a list of {{name, seconds, ...}} objects, as `r3lab notebooks run` writes")
    return rows


def record(results_json: str | Path, known: set[str], path: Path = TIMES) -> dict[str, float]:
    """Write a run's times into `path`: each passed lesson of `known` in its run's column (`column_of`), its CPU
    seconds beside a default CPU run's. Returns {lesson: seconds} of what was recorded."""
    rows = _rows(results_json)
    data = load(path)
    done = {}
    for r in rows:
        if not r.get("ok") or r["name"] not in known:
            continue
        column = column_of(r)
        entry = data["lessons"].setdefault(r["name"], {})
        entry[column] = done[r["name"]] = round(float(r["seconds"]), 1)
        if column == "default_s" and r.get("cpu_seconds") is not None:
            entry["cpu_s"] = round(float(r["cpu_seconds"]), 1)
        entry.setdefault("source", {})
        if isinstance(entry["source"], str):  # an older file's one line
            entry["source"] = {}
        entry["source"][column] = f"recorded from {results_json}" + _where(r)
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return done


def _where(row: dict) -> str:
    m = row.get("machine") or {}
    parts = [
        f"{m['cpus']} CPUs" if m.get("cpus") else "",
        f"GPU {m['gpu']}" if m.get("gpu") else "",
        f"load {m['load']:.1f}" if m.get("load") is not None else "",
    ]
    parts = [p for p in parts if p]
    return f" ({', '.join(parts)})" if parts else ""


def record_routes(routes_json: str | Path, path: Path = TIMES) -> dict[str, float]:
    """Write `make routes`' wall seconds per route (`routes/all.sh` writes `routes.json`: {route: {"seconds",
    "ok", "load"}}) into `path`'s "routes"; only routes whose every lesson passed. Returns what was recorded."""
    try:
        runs = json.loads(Path(routes_json).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{routes_json}: not the routes.json routes/all.sh writes ({e})") from None
    data = load(path)
    done = {name: round(float(r["seconds"])) for name, r in runs.items() if isinstance(r, dict) and r.get("ok")}
    data.setdefault("routes", {}).update(done)
    loads = [r.get("load") for r in runs.values() if isinstance(r, dict) and r.get("load") is not None]
    data.setdefault("routes_source", {}).update(
        {n: f"recorded from {routes_json}" + (f" (load {max(loads):.1f})" if loads else "") for n in done}
    )
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return done


def route_seconds(route: str = "", path: Path = TIMES) -> float | None:
    """`make routes`' measured seconds: one route's, or all of them together ("": None unless all three ran)."""
    got = load(path).get("routes", {})
    if route:
        return got.get(route)
    return float(sum(got.values())) if {"colab", "wheel", "binder"} <= set(got) else None


CI_LINE = re.compile(r"^\[ci\] (make test|make test-py312): passed \((\d+) s\)$", re.M)


def record_ci(log: str | Path, path: Path = TIMES) -> dict[str, int]:
    """Write a green `.ci/run`'s seconds (its closing `[ci] make test: passed (N s)` lines, both suites) into
    `path`'s "ci", for the README's statement of what `make test` and CI take. A log without both lines is an error
    (a failed suite's time says nothing of a passing one)."""
    found = {
        name.removeprefix("make ").replace("-", "_"): int(sec) for name, sec in CI_LINE.findall(Path(log).read_text())
    }
    if set(found) != {"test", "test_py312"}:
        raise ValueError(f"{log}: not the log of a green .ci/run (both '[ci] ... passed (N s)' lines needed)")
    data = load(path)
    data["ci"], data["ci_source"] = found, f"recorded from .ci/run's log ({log})"
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return found


def ci_seconds(part: str = "", path: Path = TIMES) -> float | None:
    """A green .ci/run's seconds: `make test`'s ("test"), or the whole run's ("": both suites, one after the other)."""
    got = load(path).get("ci", {})
    if part:
        return got.get(part)
    return float(got["test"] + got["test_py312"]) if {"test", "test_py312"} <= set(got) else None
