"""Crop behaviour over training steps, from r3lab's own training log or from any set of trajectories.

`crop_behaviour(source)` returns one row per step with the crop rate, the invalid-crop rate, crops per
answer, crop IoU (where ground truth exists), accuracy with and without a crop, the reward and its
terms; `detect_collapse(rows)` flags the failure mode RL runs of tool-using VLMs report (DeepEyes
issues 55 and 78, Pixel-Reasoner issue 39): the crop rate falls toward zero while accuracy holds, so
the policy has learned to answer from the coarse view and the tool is dead.

Tool necessity (`tool_gain`, `tool_harm`, `zooming_gap`, `crop_rate_need`, ... of `r3lab.evaluation.necessity`)
joins a step's row where the source measured it: a training log written with the opt-in `NecessityEvery`
callback, an `r3lab bench --necessity true` folder (its questions' ablation records), or `r3lab eval` folders
(`load_evals`: one row per folder, each family's keys as `<family>/<key>` beside the "all" row's).

Sources: a `MetricLog` (R-GRPO's `log.jsonl`, `r3lab train trl`'s `trl_log.jsonl`; SFT logs hold losses only), a
list of Trajectories (grouped by `meta["step"]`, one group when there is none), or a path that `load_run` reads: a
training folder or `log.jsonl`, an `r3lab bench` folder, an `r3lab eval` folder (its `results.json`) or its
`trajectories.jsonl`, or another system's run (`r3lab.importers.traces`, `agent_loop`, `trl`).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..bench.run import load_bench_run
from ..core.files import read_text
from ..core.settings import POSITIVE, SHARE, check_ranges, short
from ..core.trajectory import Trajectory
from ..importers.agent_loop import import_agent_loop
from ..importers.traces import import_deepeyes_eval, import_vlmr3_eval
from ..importers.trl import import_trl_completions
from ..train.metrics import MetricLog, rollout_metrics, rollout_values
from ..train.rewards import score
from .necessity import KEYS as NECESSITY
from .necessity import bench_rows

SERIES = (
    "crop_rate",
    "invalid_crop_rate",
    "crops",
    "crop_iou",
    "accuracy",
    "accuracy_crop",
    "accuracy_no_crop",
    "reward",
)
# R-GRPO's and TRL's log names -> the dashboard's (TRL's `rewards/<term>/mean` -> `reward/<term>`, below)
_LOG_KEYS = {"crops_per_rollout": "crops", "rewards/crops/mean": "crops"}
FORMATS = ("auto", "log", "r3lab", "eval", "bench", "vlm-r3", "deepeyes", "verl", "trl")


@dataclass
class CollapseConfig:
    """When a run counts as collapsed: the crop rate falls toward zero while accuracy holds."""

    window: int = 3
    """steps averaged at the start and at the end of the run"""
    floor: float = 0.1
    """a late crop rate at or below this counts as "toward zero" """
    drop: float = 0.5
    """a late crop rate below (1 - drop) x the early one also counts as "toward zero" """
    min_start: float = 0.2
    """a run that rarely cropped at the start cannot collapse"""
    tolerance: float = 0.05
    """accuracy "holds" when the late accuracy is at least the early one minus this"""

    def __post_init__(self):
        check_ranges(
            self, ints=dict(window=POSITIVE), floats=dict(floor=SHARE, drop=SHARE, min_start=SHARE, tolerance=SHARE)
        )


def crop_behaviour(source, terms: str = "code") -> list[dict]:
    """One row per step (sorted): the `SERIES` that could be measured, and `reward/<term>` for each reward term."""
    if isinstance(source, MetricLog):
        return _from_log(source)
    trajs = list(source)
    if not trajs or not all(isinstance(t, Trajectory) for t in trajs):
        raise ValueError(
            "crop_behaviour() takes a MetricLog or a non-empty list of Trajectories (load_run reads a path)"
        )
    groups: dict[int, list] = defaultdict(list)
    for t in trajs:
        groups[int(t.meta.get("step", 0) or 0)].append(t)
    return [_from_trajectories(step, groups[step], terms) for step in sorted(groups)]


def _from_log(log: MetricLog) -> list[dict]:
    rows = []
    for r in log.rows:
        row = {"step": r["step"]}
        for k, v in r.items():
            k = _LOG_KEYS.get(k, k)
            if k.startswith("rewards/") and k.endswith("/mean"):
                k = "reward/" + k[len("rewards/") : -len("/mean")]
            if (k in SERIES or k == "n" or k.rpartition("/")[2] in NECESSITY or k.startswith("reward/")) and isinstance(
                v, (int, float)
            ):
                row[k] = float(v)
        rows.append(row)
    return rows


def _from_trajectories(step: int, trajs: list, terms: str) -> dict:
    scores = score(trajs, terms, write_meta=False)
    values = rollout_values(trajs, scores)
    for t, v in zip(trajs, values):  # a benchmark's own verdict beats r3lab's answer matching
        if "hit" in t.meta:
            v["accuracy"] = float(t.meta["hit"])
    m = rollout_metrics(values)
    row = {"step": step, "n": len(trajs), **{k: m[k] for k in ("crop_rate", "invalid_crop_rate", "crops", "crop_iou")}}
    if values and values[0]["accuracy"] is not None:
        acc = [v["accuracy"] for v in values]
        row["accuracy"] = _mean(acc)
        row["accuracy_crop"] = _mean(a for a, v in zip(acc, values) if v["crops"])
        row["accuracy_no_crop"] = _mean(a for a, v in zip(acc, values) if not v["crops"])
    if trajs and all(isinstance(t.meta.get("necessity"), dict) and "hit" in t.meta for t in trajs):
        items = [{"hit": t.meta["hit"], "crops": len(t.crops), "necessity": t.meta["necessity"]} for t in trajs]
        row.update(bench_rows(items, ["all"] * len(items))["all"])
    system = [t.meta.get("system_rewards") for t in trajs if t.meta.get("system_rewards")]
    if system:  # the system's own reward terms, as it logged them
        for name in sorted({k for s in system for k in s} - {"score"}):
            row[f"reward/{name}"] = _mean(s.get(name) for s in system)
        # the system's total ("score": verl's reward_score) when it logged one, else the sum of its terms
        row["reward"] = _mean(s.get("score", sum(s.values())) for s in system)
    else:
        row["reward"] = m["reward"]
        for name, vals in scores.terms.items():
            row[f"reward/{name}"] = _mean(vals)
    return row


def _moved(out: dict, cfg) -> str:
    """How the metric went, in words that match its numbers: a fall, or a rate that never rose above the floor."""
    if out["late"] < out["early"]:
        return f"fell from {out['early']:.2f} to {out['late']:.2f}"
    return f"stayed at or below the floor of {cfg.floor:.2f}: {out['early']:.2f} -> {out['late']:.2f}"


def detect_collapse(rows: Sequence[dict], config: CollapseConfig | None = None) -> dict:
    """Did the crop rate fall toward zero while accuracy held? A verdict with the numbers behind it.

    Returns {"collapsed": bool | None (None: accuracy not measured), "metric", "early", "late",
    "accuracy_early", "accuracy_late", "steps": (first, last), "message"}.
    """
    cfg = config or CollapseConfig()
    metric = "crop_rate" if any("crop_rate" in r for r in rows) else "crops"
    pts = [r for r in rows if isinstance(r.get(metric), float) and not math.isnan(r[metric])]
    out = {
        "collapsed": False,
        "metric": metric,
        "early": None,
        "late": None,
        "accuracy_early": None,
        "accuracy_late": None,
        "steps": None,
    }
    if len(pts) < 2:
        out["message"] = "fewer than two steps with crop metrics: no trend to judge"
        return out
    w = max(1, min(cfg.window, len(pts) // 2))
    early, late = pts[:w], pts[-w:]
    out.update(
        early=_mean(r[metric] for r in early),
        late=_mean(r[metric] for r in late),
        steps=(pts[0]["step"], pts[-1]["step"]),
        accuracy_early=_mean(r.get("accuracy") for r in early),
        accuracy_late=_mean(r.get("accuracy") for r in late),
    )
    fell = out["early"] >= cfg.min_start and (out["late"] <= cfg.floor or out["late"] < (1 - cfg.drop) * out["early"])
    held = (
        None
        if math.isnan(out["accuracy_early"]) or math.isnan(out["accuracy_late"])
        else out["accuracy_late"] >= out["accuracy_early"] - cfg.tolerance
    )
    if fell and held:
        out["collapsed"] = True
        out["message"] = (
            f"crop collapse: {metric} {_moved(out, cfg)} (steps "
            f"{out['steps'][0]}-{out['steps'][1]}) while accuracy held ({out['accuracy_early']:.2f} -> "
            f"{out['accuracy_late']:.2f}): the policy answers without looking"
        )
    elif fell and held is None:
        out["collapsed"] = None
        out["message"] = f"{metric} {_moved(out, cfg)}; accuracy was not measured"
    elif fell:
        out["message"] = (
            f"{metric} {_moved(out, cfg)} and accuracy fell too "
            f"({out['accuracy_early']:.2f} -> {out['accuracy_late']:.2f}): a failing run, not a collapse"
        )
    else:
        out["message"] = f"no collapse: {metric} {out['early']:.2f} -> {out['late']:.2f}"
    return out


def load_run(
    path: str | os.PathLike,
    format: str = "auto",
    image_root: str | os.PathLike | None = None,
    tokenizer=None,
    view=None,
    load_images: bool = False,
) -> MetricLog | list[Trajectory]:
    """A training log or a set of trajectories from `path` (see the module docstring for what is read).

    format: one of `FORMATS` ("auto" tells them apart by their fields). tokenizer: needed by "verl" (a
    Hugging Face tokenizer, a Policy, or the path of a local model folder). load_images: read the main
    images too (the dashboard needs only sizes; views and explanations need pixels).
    """
    path = Path(path)
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {short(format)}")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: pass a training log, a run folder or a trajectories file")
    fmt = sniff(path) if format == "auto" else format
    if path.is_dir():
        path = path / {"log": "log.jsonl", "bench": "items.jsonl", "r3lab": "trajectories.jsonl"}.get(fmt, "")
    kw = dict(image_root=image_root, view=view, load_images=load_images)
    if fmt == "log":
        return MetricLog.load_jsonl(path)
    if fmt == "eval":
        return load_evals([path])
    if fmt == "bench":
        items, trajs = load_bench_run(path.parent, images=load_images)
        for it, t in zip(items, trajs):
            t.meta["hit"] = it["hit"]
            if "necessity" in it:  # `r3lab bench --necessity true`: the question's ablation record
                t.meta["necessity"] = it["necessity"]
        return trajs
    if fmt == "r3lab":
        return [
            Trajectory.from_dict(json.loads(ln), base=path.parent) for ln in read_text(path).splitlines() if ln.strip()
        ]
    if fmt == "verl":
        if tokenizer is None:
            raise ValueError(
                "a verl agent-loop file holds token ids: pass tokenizer= (the model folder that wrote them)"
            )
        return import_agent_loop(path, _tokenizer(tokenizer), **kw)[0]
    return {"vlm-r3": import_vlmr3_eval, "deepeyes": import_deepeyes_eval, "trl": import_trl_completions}[fmt](
        path, **kw
    )[0]


def sniff(path: Path) -> str:
    """Which format a path holds, from its file names or the fields of its first record."""
    if path.is_dir():
        for name, fmt in (
            ("log.jsonl", "log"),
            ("items.jsonl", "bench"),
            ("results.json", "eval"),
            ("trajectories.jsonl", "r3lab"),
        ):
            if (path / name).is_file():
                return fmt
        raise ValueError(
            f"{path} holds no log.jsonl, items.jsonl, results.json or trajectories.jsonl; pass the file itself"
        )
    if path.name == "results.json":
        return "eval"
    with open(path, encoding="utf-8", errors="replace") as f:  # a guess from the head: the reader names bad bytes
        head = f.read(1 << 20)
    first = head.lstrip()[:1]
    try:
        rec = json.loads(head.splitlines()[0]) if first == "{" else None
    except (ValueError, IndexError):
        rec = None
    if first == "[" or (rec is None and first == "{"):
        rec = _first_of_json(path)
    if not isinstance(rec, dict):
        raise ValueError(
            f"{path}: cannot tell its format from the first record; pass --format ({', '.join(FORMATS[1:])})"
        )
    keys = set(rec)
    for fmt, need in (
        ("bench", {"trajectory", "provenance"}),
        ("r3lab", {"pieces"}),
        ("deepeyes", {"pred_output"}),
        ("vlm-r3", {"response_list"}),
        ("verl", {"response_mask"}),
        ("trl", {"completion"}),
        ("trl", {"columns", "data"}),
        ("log", {"step"}),
    ):
        if need <= keys:
            return fmt
    raise ValueError(f"{path}: its records' fields {sorted(keys)[:8]} match no known format; pass --format")


def load_evals(paths: Sequence[str | os.PathLike]) -> MetricLog:
    """`r3lab eval` output folders (or their `results.json`), one row each: the "all" row's crop measures, accuracy,
    reward and tool necessity (`necessity.KEYS`), and each family's necessity keys as `<family>/<key>` (the
    naming of `EvalEvery`'s log).

    A row's step is the last number in its folder's name (`r3lab eval --out runs/eval/step_000200` -> 200, as the
    training checkpoints are named) when every folder has a distinct one, else the folder's place in `paths`. A
    folder evaluated without tool necessity (`--necessity false`) gives its crop measures and a warning naming it.
    """
    files = [_eval_results(Path(p)) for p in paths]
    if not files:
        raise ValueError("load_evals needs at least one `r3lab eval` folder")
    numbers = [re.findall(r"\d+", f.parent.name) for f in files]
    steps = [int(n[-1]) if n else None for n in numbers]
    if None in steps or len(set(steps)) < len(steps):  # names without (distinct) numbers: the order given
        steps = list(range(len(files)))
    log = MetricLog()
    for step, f in sorted(zip(steps, files)):
        rows = _eval_rows(f)
        values = {k: v for k, v in rows["all"].items() if k in SERIES or k == "n" or k in NECESSITY}
        values.update(
            {f"{fam}/{k}": v for fam, row in rows.items() if fam != "all" for k, v in row.items() if k in NECESSITY}
        )
        if not any(k in NECESSITY for k in rows["all"]):
            warnings.warn(
                f"{f}: no tool-necessity keys (tool_gain, tool_harm, zooming_gap, ...): that evaluation ran "
                "with --necessity false; run `r3lab eval ... --necessity true` to measure them",
                stacklevel=2,
            )
        log.log(step, **values)
    return log


def _eval_results(path: Path) -> Path:
    f = path / "results.json" if path.is_dir() else path
    if not f.is_file():
        raise FileNotFoundError(f"{f} does not exist: pass the --out folder of `r3lab eval` (it holds results.json)")
    return f


def _eval_rows(f: Path) -> dict:
    try:
        obj = json.loads(read_text(f))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{f}: not valid JSON (line {e.lineno}: {e.msg}); rerun `r3lab eval --out` to rewrite it"
        ) from None
    rows = obj.get("rows") if isinstance(obj, dict) else None
    if (
        not isinstance(rows, dict)
        or not isinstance(rows.get("all"), dict)
        or not all(isinstance(r, dict) for r in rows.values())
    ):
        raise ValueError(
            f"{f}: not an `r3lab eval` results.json "
            '(it needs "rows": {family: {metric: value}} with an "all" row); '
            "pass the --out folder of `r3lab eval`"
        )
    if obj.get("complete") is False:  # Ctrl-C stopped that evaluation: its numbers cover the samples before it
        warnings.warn(
            f'{f} holds a partial evaluation ("complete": false, {rows["all"].get("n")} samples); rerun '
            "`r3lab eval` for the whole set",
            stacklevel=3,
        )
    return rows


def _first_of_json(path: Path):
    obj = json.loads(read_text(path))
    return obj[0] if isinstance(obj, list) and obj else obj


def _tokenizer(tok):
    if isinstance(tok, (str, os.PathLike)):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tok, local_files_only=True)
    return tok


def _mean(xs) -> float:
    vals = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(vals) / len(vals) if vals else math.nan
