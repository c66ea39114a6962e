"""`run_bench`: a policy on a real benchmark, scored like lmms-eval / VLMEvalKit, crops and all.

The benchmark is read from its local copy (`r3lab.bench.readers`); questions are rolled out in
chunks of `batch` (greedy by default) through the same interleaved engine as everything else, so
each answer may crop; each response is scored by the benchmark's own rules
(`r3lab.bench.scoring`) and its crops against the target boxes where the benchmark has
them. A run folder holds `table.md`, `results.json`, `items.jsonl` (one line per question: the
scores, the provenance and the full trajectory, crops as PNG files under `crops/`, the main image
by reference to the benchmark) and `figure.png` (the command draws it with `r3lab.viz.bench`).
Memory stays bounded: only one chunk's images are decoded at a time, and with `keep_images=False`
nothing is kept after an item is written.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol, Sequence

from tqdm.auto import tqdm

from ..bench.readers import BENCHMARKS, read_benchmark
from ..core.env import progress_disabled
from ..core.files import FolderLock, atomic_write_text, check_out_dir, remove_entry
from ..core.regions import ViewConfig
from ..core.settings import MAX_ROWS, SEED, WHY, check_ranges, nested, read_nested, short
from ..engine.config import RolloutConfig, RolloutSettings
from ..engine.rollouts import rollout
from .bench_items import _group, _plain, _write_item, item_record, summarize_bench
from .bench_items import load_bench_run as load_bench_run  # a run folder read back: importable from here too

OWN = ("items.jsonl", "table.md", "results.json", "figure.png", "crops")  # a run folder's own entries
COLUMNS = (
    "n",
    "accuracy",
    "crop_rate",
    "crops",
    "invalid_crop_rate",
    "crop_iou",
    "accuracy_crop",
    "accuracy_no_crop",
    "answered",
)


@dataclass
class BenchConfig:
    """What `r3lab bench` reads, how the policy answers, and where the run is written."""

    data: str = ""
    """the benchmark's local copy: V*'s folder (test_questions.jsonl), else its .tsv file"""
    n: int = 0
    """score the first n questions (0 = all)"""
    out: str = ""
    """folder for table.md, results.json, items.jsonl, crops/ and figure.png (CLI default: runs/bench/NAME)"""
    seed: int = 0
    """seed of V*'s per-question option shuffle (recorded in every item)"""
    shuffle: bool = True
    """shuffle V*'s options (its correct option is always listed first); others keep their order"""
    rollout: RolloutSettings = nested(RolloutSettings, temperature=0.0)
    """crops (0: coarse view only), token budgets"""
    # (a real checkpoint: 1024 / 512), greedy as lmms-eval and VLMEvalKit decode
    batch: int = 4
    """questions decoded together; bounds memory (each holds its original image while it runs)"""
    max_pixels: int = 0
    """the main image's pixel budget (0 = the policy's own view)"""
    crop_max_pixels: int = 0
    """a crop's pixel budget (0 = the policy's own view)"""
    instruction: str = ""
    """the instruction after each question (empty: the policy's own, e.g. its r3lab.json prompt)"""
    overwrite: bool = False
    """replace a run already in `out` (its OWN files); else such a folder is refused"""
    # five more rollouts per question (three where it has no target boxes), r3lab.evaluation.necessity.bench_necessity
    necessity: bool = False
    """tool necessity (up to five more rollouts per question): accuracy with crops disabled / swapped (blank, coarse;
    random box, ground-truth box where the benchmark has target boxes), tool_gain, tool_harm, crop rates, zooming_gap
    in every category's row"""
    # five more settings per question (r3lab.audit.bench_audit.bench_audit)
    audit: bool = False
    """the 2026 audit (format-only, dummy crop, result-only, no crops greedy and by a majority of k, the tool-only
    solved set, attention vs box, cost per correct answer) in every category's row"""

    def __post_init__(self):
        read_nested(self)
        check_ranges(
            self,
            ints=dict(
                n=(0, 10**7), seed=SEED, batch=(1, MAX_ROWS), max_pixels=(0, 1 << 28), crop_max_pixels=(0, 1 << 28)
            ),
            why=dict(
                n=WHY["questions"],
                seed=WHY["seed"],
                batch=WHY["batch"],
                max_pixels=WHY["pixels"],
                crop_max_pixels=WHY["pixels"],
            ),
        )


@dataclass
class BenchResult:
    """Per-category rows (plus "all"), the benchmark's headline numbers, one record per item."""

    name: str
    rows: dict[str, dict]
    headline: dict[str, float]
    items: list[dict] = field(repr=False, default_factory=list)
    trajectories: list = field(repr=False, default_factory=list)
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    total: int = 0  # questions asked for; fewer items: Ctrl-C stopped the run (`complete` is False)

    @property
    def complete(self) -> bool:
        return len(self.items) >= self.total

    @property
    def accuracy(self) -> float:
        return self.rows["all"]["accuracy"]

    def table(self) -> str:
        """Markdown: the headline numbers, then one row per category and "all"."""
        head = [f"**{self.name}**: " + ", ".join(f"{k} {_fmt(v)}" for k, v in self.headline.items()), ""]
        if not self.complete:
            head[:0] = [f"**partial run: {len(self.items)} of {self.total} questions** (interrupted)", ""]
        head.append("| category | " + " | ".join(COLUMNS) + " |")
        head.append("|" + "---|" * (len(COLUMNS) + 1))
        for cat, row in self.rows.items():
            head.append(f"| {cat} | " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
        more = [k for k in self.rows.get("all", {}) if k not in COLUMNS]  # what `extras` added (tool necessity)
        if more:
            head += ["", "| category | " + " | ".join(more) + " |", "|" + "---|" * (len(more) + 1)]
            head += [
                f"| {cat} | " + " | ".join(_fmt(row.get(c)) for c in more) + " |" for cat, row in self.rows.items()
            ]
        return "\n".join(head)

    def to_dict(self) -> dict:
        """JSON-ready (NaN, "not measured", becomes null)."""
        return _clean(
            {
                "benchmark": self.name,
                "headline": self.headline,
                "rows": self.rows,
                "config": self.config,
                "seconds": self.seconds,
                "complete": self.complete,
                "total": self.total,
            }
        )

    def save(self, folder: str | Path) -> Path:
        """table.md and results.json (items.jsonl is written item by item while the run goes)."""
        folder = Path(folder)
        atomic_write_text(folder / "table.md", self.table() + "\n")
        atomic_write_text(folder / "results.json", json.dumps(self.to_dict(), indent=2, default=_plain))
        return folder


class Extras(Protocol):
    """More per question and per row, computed chunk by chunk while the chunk's images are decoded
    (`r3lab.evaluation.necessity.BenchNecessity`: the questions rolled out again under ablations)."""

    def items(self, policy, name: str, samples: list, trajectories: list, scripts: list | None) -> list[dict]:
        """Fields added to each question's record (JSON-ready)."""

    def rows(self, items: list[dict], groups: list[str]) -> dict[str, dict]:
        """Keys added to each category's row (and "all"), from the finished items and their categories."""


def run_bench(
    policy,
    name: str,
    config: BenchConfig | None = None,
    progress: bool | None = None,
    keep_images: bool = True,
    scripts: Sequence | None = None,
    extras: Extras | None = None,
) -> BenchResult:
    """Roll out `policy` on benchmark `name` (one of `BENCHMARKS`) and score it; writes the run to `config.out`.

    keep_images: keep every trajectory with its images in the result (notebooks); False drops them once
    an item is written, so a whole benchmark runs in the memory of one chunk.
    scripts: forced text per question (see `rollout`): tests and lessons make the policy answer as told.
    extras: more per question and per row (`config.necessity` needs the tool-necessity ones:
    `r3lab.evaluation.necessity.bench_necessity` runs the benchmark with them).
    """
    cfg = config or BenchConfig()
    if cfg.necessity and extras is None:
        raise ValueError(
            "BenchConfig.necessity = True needs the ablation rollouts: run "
            "r3lab.evaluation.necessity.bench_necessity(policy, name, config) (as `r3lab bench` does)"
        )
    if cfg.audit and extras is None:
        raise ValueError(
            "BenchConfig.audit = True needs the audit's rollouts: run "
            "r3lab.audit.bench_audit.bench_audit(policy, name, config) (as `r3lab bench` does)"
        )
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {short(name)}; choose one of {', '.join(BENCHMARKS)}")
    if not cfg.data:
        raise ValueError(
            f"no data given: pass the local copy of {name} (--data PATH); README, section "
            "Benchmarks, says where to download it"
        )
    samples = read_benchmark(name, cfg.data, cfg.n, cfg.seed, cfg.shuffle)
    if not samples:
        raise ValueError(f"{cfg.data} holds no questions")
    if scripts is not None and len(scripts) != len(samples):
        raise ValueError(f"scripts must hold one entry per question ({len(samples)}), got {len(scripts)}")
    policy = _with_view(policy, cfg)
    rcfg = RolloutConfig.of(cfg.rollout, group_size=1, batch_rows=cfg.batch, seed=cfg.seed)
    out = check_out_dir(cfg.out, OWN, cfg.overwrite, "benchmark run") if cfg.out else None
    with FolderLock(out, "benchmark run") if out is not None else contextlib.nullcontext():
        return _run(policy, name, cfg, samples, rcfg, out, progress, keep_images, scripts, extras)


def _run(policy, name, cfg, samples, rcfg, out, progress, keep_images, scripts, extras) -> BenchResult:
    if out is not None:
        check_out_dir(out, OWN, cfg.overwrite, "benchmark run")  # again, under the lock
        _fresh(out)
    items, trajs = [], []
    t0 = time.perf_counter()
    bar = tqdm(
        total=len(samples),
        desc=f"bench {name}",
        leave=False,
        disable=progress is False or (progress is None and progress_disabled()),
    )
    try:
        for a in range(0, len(samples), cfg.batch):
            chunk = samples[a : a + cfg.batch]
            forced = None if scripts is None else list(scripts)[a : a + cfg.batch]
            t1 = time.perf_counter()
            done = rollout(policy, chunk, rcfg, progress=False, scripts=forced)
            wall = (time.perf_counter() - t1) / len(chunk)  # the chunk's seconds, shared: cost per correct answer
            more = extras.items(policy, name, chunk, done, forced) if extras is not None else [{}] * len(chunk)
            for s, t, extra in zip(chunk, done, more):
                rec = {**item_record(name, s, t), "seconds": {"wall_s": wall}, **extra}
                if out is not None:
                    _write_item(out, rec, t)
                items.append(rec)
                if keep_images:
                    trajs.append(t)
            bar.update(len(chunk))
    except KeyboardInterrupt:  # keep what is done, marked partial (table.md, results.json "complete": false)
        if not items:
            raise
        warnings.warn(
            f"interrupted after {len(items)} of {len(samples)} questions: the result covers those only "
            "(BenchResult.complete is False)",
            stacklevel=2,
        )
    finally:
        bar.close()
    rows, headline = summarize_bench(name, items)
    if extras is not None and items:
        for cat, keys in extras.rows(items, [_group(name, it) for it in items]).items():
            rows.setdefault(cat, {}).update(keys)
    res = BenchResult(name, rows, headline, items, trajs, asdict(cfg), time.perf_counter() - t0, len(samples))
    if out is not None:
        res.save(out)
    return res


def _with_view(policy, cfg: BenchConfig):
    """The policy with the run's pixel budgets and instruction (the caller's policy is left as it was)."""
    if not (cfg.max_pixels or cfg.crop_max_pixels or cfg.instruction):
        return policy
    v = policy.view
    view = ViewConfig(
        v.min_pixels,
        cfg.max_pixels or v.max_pixels,
        v.crop_min_pixels,
        cfg.crop_max_pixels or v.crop_max_pixels,
        v.factor,
        v.max_aspect,
    )
    prompt = replace(policy.prompt, instruction=cfg.instruction) if cfg.instruction else policy.prompt
    return replace(policy, view=view, prompt=prompt)


def _fresh(out: Path) -> None:
    """A new run replaces this folder's own files (items, crops, table, results, figure), nothing else."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OWN:
        remove_entry(out / name)  # a linked crops/ is unlinked, never emptied


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return None if isinstance(v, float) and math.isnan(v) else v


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.3f}"
