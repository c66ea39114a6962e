"""A sweep's specification: one command, its settings, a grid of values crossed with seeds, the held-out evaluation,
the baseline point and the metrics; and the runs it makes, each named readably and identified by a hash.

```yaml
command: train rgrpo          # train sft | train rgrpo | eval | recipe | notebook NN
settings: {policy: assets/checkpoints/r3-tiny-sft, data: runs/train-set, steps: 20}
grid: {reward-region-weight: [0.0, 1.0]}
seeds: [0, 1, 2]
eval: {data: runs/held-out, n: 200}
baseline: {reward-region-weight: 0.0}
metrics: [read_one.accuracy, crop_iou]
```

Names are the command's own: flags (dashes or underscores) for `train` and `eval`, `--set` paths for `recipe`,
the lesson's parameters for `notebook NN`. Which values a command accepts is checked by the command itself
(`r3lab.cli.sweep_check`), before any run starts.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.config_file import read_config
from ..core.settings import short

KEYS = ("command", "settings", "grid", "seeds", "eval", "baseline", "metrics")
COMMANDS = ("train sft", "train rgrpo", "eval", "recipe", "notebook")
TRAINING = ("train sft", "train rgrpo")
# what the sweep sets itself, per command: a run's folder, seed and resumption are the sweep's to choose
RESERVED = {
    "train sft": ("out-dir", "seed", "resume", "overwrite"),
    "train rgrpo": ("out-dir", "seed", "resume", "overwrite"),
    "eval": ("out", "seed", "overwrite"),
    "recipe": ("out", "seed"),
    "notebook": ("seed", "out"),
}
EVAL_RESERVED = ("policy", "out", "overwrite")  # the eval step after training evaluates the run's own checkpoint
MAX_SPEC_BYTES = 1 << 20  # a spec is a page of YAML; more is a wrong file


@dataclass
class SweepSpec:
    """A sweep as its file gives it, names normalised (see the module's docstring)."""

    command: str  # "train sft", "train rgrpo", "eval", "recipe" or "notebook NN"
    settings: dict = field(default_factory=dict)  # the same for every run
    grid: dict = field(default_factory=dict)  # name -> the values every combination takes
    seeds: list = field(default_factory=lambda: [0])  # crossed with the grid; the command's own --seed
    eval: dict = field(default_factory=dict)  # training commands: `r3lab eval` settings of the held-out evaluation
    baseline: dict = field(default_factory=dict)  # the grid point every other point is compared with
    metrics: list = field(default_factory=list)  # keys of the runs' results (empty: each family's accuracy, crop IoU)

    def __post_init__(self):
        self.validate()

    @property
    def kind(self) -> str:
        """The command without its argument: "notebook 50" -> "notebook"."""
        return "notebook" if self.command.startswith("notebook") else self.command

    @property
    def notebook(self) -> str:
        return self.command.split(maxsplit=1)[1] if self.kind == "notebook" else ""

    def validate(self) -> "SweepSpec":
        """ValueError naming the key and the fix for anything malformed (the command checks the values later)."""
        words = " ".join(str(self.command).split())
        if words.startswith("notebook"):
            if len(words.split()) != 2:
                raise ValueError(
                    f"sweep spec: command {short(self.command)}: write `notebook NN`, the lesson's number "
                    "(e.g. notebook 50)"
                )
        elif words not in COMMANDS:
            raise ValueError(
                f"sweep spec: command {short(self.command)} is not one a sweep runs: {_choices(COMMANDS)}"
                f"{_close(words, COMMANDS)}"
            )
        self.command = words
        for key in ("settings", "grid", "eval", "baseline"):
            if not isinstance(getattr(self, key), dict):
                raise ValueError(
                    f"sweep spec: {key} must be a mapping of names to values, got {type(getattr(self, key)).__name__}"
                )
        self.settings = {self.name(k): v for k, v in self.settings.items()}
        self.grid = {self.name(k): v for k, v in self.grid.items()}
        self.baseline = {self.name(k): v for k, v in self.baseline.items()}
        self.eval = {_flag(k): v for k, v in self.eval.items()}
        for k, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(
                    f"sweep spec: grid.{_label(k)} must be a non-empty list of values, got {short(values)}"
                )
            if len({_key(v) for v in values}) != len(values):
                raise ValueError(f"sweep spec: grid.{_label(k)} repeats a value: {short(values)}")
            if k in self.settings:
                raise ValueError(f"sweep spec: {_label(k)} is in both settings and grid; keep it in one of them")
        reserved = RESERVED[self.kind]
        for k in (*self.settings, *self.grid):
            if _flag(k) in reserved:
                raise ValueError(
                    f"sweep spec: {_label(k)} is set by the sweep for every run (its folder, seed and "
                    f"resumption: {', '.join(reserved)}); "
                    + ("give seeds: [..] instead" if "seed" in k else "leave it out")
                )
        if bad := [k for k in self.eval if k in EVAL_RESERVED]:
            raise ValueError(f"sweep spec: eval.{bad[0]} is set by the sweep (the run's own checkpoint and folder)")
        if self.kind in TRAINING and not self.eval.get("data"):
            raise ValueError(
                "sweep spec: a training sweep evaluates every run on the same held-out questions: give "
                "eval: {data: <held-out dataset folder>, n: <questions>}"
            )
        if self.kind not in TRAINING and self.eval:
            raise ValueError(
                f"sweep spec: eval is for training commands; {short(self.command)} evaluates itself (put its "
                "settings under settings:)"
            )
        if (
            isinstance(self.seeds, int)
            or not isinstance(self.seeds, list)
            or not self.seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in self.seeds)
        ):
            raise ValueError(
                f"sweep spec: seeds must be a list of integers in [0, 2**31), e.g. [0, 1, 2]; got {short(self.seeds)}"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"sweep spec: seeds repeat a value: {short(self.seeds)}")
        for k, v in self.baseline.items():
            if k not in self.grid:
                raise ValueError(
                    f"sweep spec: baseline.{_label(k)} is not a grid name{_close(k, self.grid)}; the baseline "
                    f"is one grid point: {sorted(self.grid)}"
                )
            if _key(v) not in {_key(x) for x in self.grid[k]}:
                raise ValueError(
                    f"sweep spec: baseline.{_label(k)} = {short(v)} is not among grid.{_label(k)} = "
                    f"{short(self.grid[k])}"
                )
        if self.baseline and set(self.baseline) != set(self.grid):
            raise ValueError(
                f"sweep spec: baseline names {sorted(self.baseline)}, but the grid has "
                f"{sorted(self.grid)}: give a value for each grid name"
            )
        if not isinstance(self.metrics, list) or not all(isinstance(m, str) and m for m in self.metrics):
            raise ValueError(
                "sweep spec: metrics must be a list of names, e.g. [read_one.accuracy, crop_iou]; "
                f"got {short(self.metrics)}"
            )
        return self

    def name(self, key) -> str:
        """A setting's name as the command spells it: flags with dashes, `--set` paths and lesson parameters with
        underscores."""
        k = str(key).strip().lstrip("-")
        return k.replace("-", "_") if self.kind in ("recipe", "notebook") else k.replace("_", "-")

    def points(self) -> list[dict]:
        """Every combination of the grid's values, the first name varying slowest (no grid: one point)."""
        names = list(self.grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*(self.grid[k] for k in names))]

    def baseline_point(self) -> dict:
        """The baseline, or (none given) the first point."""
        return {k: self.baseline[k] for k in self.grid} if self.baseline else self.points()[0]

    def runs(self) -> list["Run"]:
        return [Run.make(self, p, s) for p in self.points() for s in self.seeds]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Run:
    """One point x seed: its settings (the spec's, then the point's), its identity and its folder's name."""

    point: dict
    seed: int
    settings: dict
    id: str  # hash of the command, resolved settings, evaluation and seed
    folder: str  # readable: the point's values, the seed, the id's start

    @classmethod
    def make(cls, spec: SweepSpec, point: dict, seed: int) -> "Run":
        settings = {**spec.settings, **point}
        ident = json.dumps(
            {"command": spec.command, "settings": settings, "eval": spec.eval, "seed": seed},
            sort_keys=True,
            default=str,
        )
        h = hashlib.sha256(ident.encode()).hexdigest()[:12]
        parts = [f"{k}={_text(v)}" for k, v in point.items()] + [f"seed={seed}"]
        return cls(point, seed, settings, h, _safe("_".join(parts))[:96] + "-" + h[:8])

    def to_dict(self) -> dict:
        return {"id": self.id, "folder": self.folder, "point": self.point, "seed": self.seed}


def read_spec(path: str | os.PathLike) -> SweepSpec:
    """A spec file (YAML or JSON), read by the one config reader (`core.config_file.read_config`: size, anchors,
    repeated keys, NaN refused): ValueError naming the file, and the line where YAML can say it."""
    return spec_from_dict(read_config(path, "sweep spec", MAX_SPEC_BYTES), str(path))


def spec_from_dict(values, where: str = "sweep spec") -> SweepSpec:
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping with the keys {', '.join(KEYS)}; got {type(values).__name__}")
    if bad := [k for k in values if k not in KEYS]:
        raise ValueError(
            f"{where}: unknown key {bad[0]!r}{_close(str(bad[0]), KEYS)}; a spec's keys: {', '.join(KEYS)}"
        )
    if "command" not in values:
        raise ValueError(f"{where}: no command: say which command every run runs ({_choices(COMMANDS)})")
    try:
        return SweepSpec(**{k: v for k, v in values.items() if v is not None})
    except ValueError as e:
        raise ValueError(f"{where}: {str(e).removeprefix('sweep spec: ')}") from None


def argv_value(v) -> str:
    """A setting's value as its flag reads it: true / false, JSON for lists and mappings, else the text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)) or v is None:
        return json.dumps(v)
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"sweep spec: {v!r} is not a value a setting takes (NaN and inf would spoil a run)")
    return str(v)


def _flag(k) -> str:
    return str(k).strip().lstrip("-").replace("_", "-")


def _key(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _text(v) -> str:
    """A value as a folder name shows it: a path by its last part (the id tells paths with one name apart)."""
    if isinstance(v, str) and ("/" in v or os.sep in v):
        return Path(v.rstrip("/" + os.sep)).name or v
    return _key(v) if isinstance(v, (list, dict)) else argv_value(v)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text)


def _choices(names) -> str:
    return ", ".join(names)


def _close(word: str, names) -> str:
    near = difflib.get_close_matches(str(word), [str(n) for n in names], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


close_matches = _close


def _label(key) -> str:
    """A key named in a message, cut short: a spec's key of megabytes stays a line."""
    key = str(key)
    return key if len(key) <= 100 else f"{key[:100]}... ({len(key):,} characters)"
