"""A sweep's folder: sweep.json (the spec as it ran, its runs, git commit, chance levels) and one folder per run
under runs/ (run.json: the steps it runs; status.json; log.txt; the command's own outputs).

Running a spec into a folder that holds a sweep is a resume: the same spec goes on where it stopped; a spec that
differs is refused, unless `extend` and it only adds grid values or seeds (the runs already there keep their
folders). `metrics` and `baseline` change only the report, so they may change at any time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..core.files import atomic_write_text, read_text
from .cell import RUN_FILE
from .spec import TRAINING, Run, SweepSpec, argv_value, spec_from_dict

SWEEP_FILE = "sweep.json"
RUNS = "runs"
FORMAT = 1
IDENTITY = ("command", "settings", "eval")  # what a run is; grid and seeds say which runs there are
POLICY_FLAGS = ("policy", "dtype", "attn", "calls")  # a training run's loading flags the evaluation shares


def is_sweep(folder: str | os.PathLike) -> bool:
    return (Path(folder) / SWEEP_FILE).is_file()


def read_sweep(folder: str | os.PathLike) -> dict:
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} holds no sweep ({SWEEP_FILE} is missing): run `r3lab sweep SPEC --out {folder}` first"
        )
    try:
        data = json.loads(read_text(path))
        spec_from_dict(data["spec"], str(path))
        data["runs"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a sweep's record ({e})") from None
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format {data.get('format')!r}; this r3lab reads format {FORMAT}")
    return data


def check_same(old: dict, new: SweepSpec, extend: bool, where: str) -> list[str]:
    """ValueError naming what differs when `new` may not run into the folder whose spec is `old`; returns notes on
    what changes (grid values and seeds added, report keys changed)."""
    cur, notes = new.to_dict(), []
    for key in IDENTITY:
        if old.get(key) != cur[key]:
            raise ValueError(
                f"{where} holds a sweep whose {key} differs: {old.get(key)!r} there, {cur[key]!r} now. "
                "A sweep's runs are one command's; give this spec another --out"
            )
    if set(old.get("grid", {})) != set(cur["grid"]):
        raise ValueError(
            f"{where} holds a sweep over {sorted(old.get('grid', {}))}, this spec sweeps "
            f"{sorted(cur['grid'])}: give it another --out"
        )
    for k, values in cur["grid"].items():
        before = old["grid"][k]
        if values == before:
            continue
        if not extend:
            raise ValueError(
                f"{where}: grid.{k} was {before!r}, now {values!r}; to add values to the sweep there, "
                "run with --extend (it only adds)"
            )
        if lost := [v for v in before if v not in values]:
            raise ValueError(
                f"{where}: --extend only adds, but grid.{k} leaves out {lost!r}; keep every value the sweep already ran"
            )
        notes.append(f"grid.{k}: adds {[v for v in values if v not in before]!r}")
    if cur["seeds"] != old.get("seeds"):
        if not extend:
            raise ValueError(
                f"{where}: seeds were {old.get('seeds')!r}, now {cur['seeds']!r}; to add seeds, run with --extend"
            )
        if lost := [s for s in old.get("seeds", []) if s not in cur["seeds"]]:
            raise ValueError(f"{where}: --extend only adds, but seeds leave out {lost!r}")
        notes.append(f"seeds: adds {[s for s in cur['seeds'] if s not in old['seeds']]!r}")
    notes += [f"{k} changed (the report reads the new one)" for k in ("metrics", "baseline") if old.get(k) != cur[k]]
    return notes


def prepare(
    folder: str | os.PathLike, spec: SweepSpec, extend: bool = False, timeout: float = 0.0, extra: dict | None = None
) -> tuple[list[tuple[Run, Path]], list[str]]:
    """Write sweep.json and each run's folder (its run.json) into `folder`, checked against a sweep already there;
    returns every run with its folder, and notes on what changed."""
    folder = Path(folder)
    runs = spec.runs()
    notes: list[str] = []
    record = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "git": git_commit(),
        "python": sys.version.split()[0],
        "cwd": os.getcwd(),
        **(extra or {}),
    }
    if is_sweep(folder):
        old = read_sweep(folder)
        notes = check_same(old["spec"], spec, extend, str(folder))
        record["created"], record["history"] = (
            old.get("created"),
            old.get("history", [])
            + [{"resumed": time.strftime("%Y-%m-%dT%H:%M:%S"), "git": record["git"], "notes": notes}],
        )
        record["cwd"] = old.get("cwd", record["cwd"])
    elif folder.is_dir() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
        raise FileExistsError(f"{folder} is not empty and holds no sweep: give the sweep an empty or new --out")
    record["runs"] = [r.to_dict() for r in runs]
    out = []
    for r in runs:
        d = folder / RUNS / r.folder
        d.mkdir(parents=True, exist_ok=True)
        steps = steps_of(spec, r, d.resolve())
        atomic_write_text(
            d / RUN_FILE,
            json.dumps(
                {
                    **r.to_dict(),
                    "command": spec.command,
                    "settings": r.settings,
                    "steps": steps,
                    "cwd": record["cwd"],
                    "timeout": timeout,
                    "env": run_env(folder, r),
                },
                indent=1,
            ),
        )
        out.append((r, d))
    atomic_write_text(folder / SWEEP_FILE, json.dumps(record, indent=1, default=str))
    return out, notes


def run_env(folder: Path, run: Run) -> dict:
    """What a run's processes are told: who they are in the sweep (report_to's hyperparameters and names), and one
    trackio folder for the whole sweep, written in trackio's append-only mode (runs write it at once)."""
    return {
        "R3LAB_SWEEP": json.dumps(
            {"sweep": folder.resolve().name, "run": run.folder, "point": run.point, "seed": run.seed}
        ),
        "TRACKIO_DIR": str(folder.resolve() / "trackio"),
        "TRACKIO_STORAGE_MODE": "jsonl",
    }


def steps_of(spec: SweepSpec, run: Run, d: Path) -> list[dict]:
    """The processes a run is: the command's own CLI (`python -m r3lab.cli ...`) with the run's settings, seed and
    folders; for training, `r3lab eval` of its checkpoint on the held-out data, then the per-question scores."""
    seed = str(run.seed)
    if spec.kind in TRAINING:
        flags = [*spec.command.split(), *cli_flags(run.settings)]
        evals = {
            "necessity": False,
            **{k: run.settings[k] for k in POLICY_FLAGS[1:] if k in run.settings},
            **spec.eval,
        }  # tool necessity (five more rollouts) only when asked
        return [
            _cli("train", [*flags, "--seed", seed, "--out-dir", d / "train", "--resume", "auto"]),
            _cli(
                "eval", ["eval", "--policy", d / "train", *cli_flags(evals), "--out", d / "eval", "--overwrite", "true"]
            ),
            {"name": "scores", "module": "r3lab.sweep.scores", "args": [str(d / "eval")]},
        ]
    if spec.kind == "eval":
        return [
            _cli(
                "eval", ["eval", *cli_flags(run.settings), "--seed", seed, "--out", d / "eval", "--overwrite", "true"]
            ),
            {"name": "scores", "module": "r3lab.sweep.scores", "args": [str(d / "eval")]},
        ]
    if spec.kind == "recipe":
        sets = [x for k, v in run.settings.items() for x in ("--set", f"{k}={json.dumps(v)}")]
        return [_cli("recipe", ["recipe", *sets, "--seed", seed, "--out", d / "recipe"])]
    params = [x for k, v in run.settings.items() for x in notebook_parameter(k, v)]
    return [_cli("notebook", ["notebooks", "run", spec.notebook, *params, "-p", "seed", seed, "--out", d / "notebook"])]


def cli_flags(settings: dict) -> list[str]:
    return [x for k, v in settings.items() for x in (f"--{k}", argv_value(v))]


def notebook_parameter(name: str, value) -> list[str]:
    """`-p NAME VALUE` as `r3lab notebooks run` reads it (Python's True / False / None), `-r` for text."""
    if isinstance(value, str):
        return ["-r", name, value]
    if isinstance(value, bool) or value is None:
        return ["-p", name, repr(value)]
    return ["-p", name, json.dumps(value) if isinstance(value, (list, dict)) else str(value)]


def _cli(name: str, args: list) -> dict:
    return {"name": name, "module": "r3lab.cli", "args": [str(a) for a in args]}


def git_commit() -> str:
    """The commit of the r3lab checkout that runs the sweep ("" outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
