"""The miniature replication: r3-tiny from nothing to the six-row comparison, one command.

Stages (each saved under `out/`, skipped when already there, so an interrupted run resumes): a base (`base/`:
grounding, "Where is the red circle?" answered with its crop call, checked on held-out questions; a phase naming
landmarks in pairs; close-ups whose crop the environment opens, first of colour marks, then of the recipe's detail
(the grating: close-ups alone, then mixed with grounding questions), answered with it and checked on held-out
close-ups; a verdict drill of comparisons without images, checked on held-out text comparisons; and a comparison
phase where half the samples give both looks, crops and reads, and ask for the verdict), VLIR SFT from it (`sft/`),
the same samples answered without crops (`no_crop/`, also from `base`), R-GRPO from the SFT model with and without
the region reward (`rgrpo/`, `rgrpo_no_region/`). The base and SFT stages are lists of phases (`curriculum.py`,
`RecipeConfig.base` / `.sft`) run by one loop: train a phase, take its check, add phases of its mix while the check
is below its bar, and stop with a `CheckError` naming the phase's flags past its last round. Rows of the table:

    no_crop          trained on the same samples with the crops removed, evaluated with max_crops=0
    sft              VLIR SFT
    sft_rgrpo        SFT + R-GRPO (accuracy + format + region reward)
    rgrpo_no_region  SFT + R-GRPO without the region reward
    oracle           the SFT model; each crop it asks for is the ground-truth region (upper bound)
    random           the SFT model; each crop it asks for is a random box of the ground truth's size

Every row is evaluated greedily on the same held-out samples (`n_eval` per family, a seed disjoint from
training) with bootstrap 95% intervals; `out/eval/<row>.json` per row, `out/results.json` and `out/table.md`
for all. With `parallel` > 1, stages and evaluations run as that many processes (one thread each); the base and
SFT stages run as that many DDP ranks, and each of their checks deals its held-out questions out over them.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from tqdm.auto import tqdm

from ..core.env import progress_disabled, seed_everything
from ..core.files import atomic_write_text, file_lock
from ..core.jobs import run_jobs
from ..core.prompt import PromptConfig
from ..core.settings import short
from ..data.vlir import build_samples
from ..evaluation.ablations import oracle_boxes, random_boxes
from ..evaluation.evaluation import evaluate
from ..model.policy import load_policy
from ..model.tiny import build_tiny
from ..train import dist
from ..train.rgrpo import train as train_rgrpo
from ..train.sft import train as train_sft
from . import checks
from .phase_data import phase_samples
from .recipe_config import MODEL_OF, R3_TINY, ROWS, STAGES, RecipeConfig
from .recipe_folder import check_folder, read_recipe
from .recipe_format import FORMAT_VERSION
from .report import markdown_table
from .shipping import ship

__all__ = ["R3_TINY", "ROWS", "RecipeConfig", "Recipe", "run_recipe", "run_job"]  # config names re-exported

CRITICAL = ("stage:base", "stage:sft")  # every other job waits for these: they run alone, on all cores
FAILED = ".check_failed"  # out/logs/jobs/<job>.check_failed: a job's CheckError, for the process that ran it
PROVENANCE = "PROVENANCE.md"  # in out/: where stages not trained by this folder's recipe came from (copied to the card)


class Recipe:
    """Runs the stages of a RecipeConfig, reusing what `out/` already holds.

    Several processes may share `out/` when they ask for rows that need different stages (e.g.
    `--rows sft,oracle` next to `--rows no_crop`); two processes training the same stage would clash.
    """

    def __init__(self, config: RecipeConfig | None = None, progress: bool | None = None):
        self.cfg = (config or RecipeConfig()).validate()  # again: its lists of phases may have changed in place
        self.out = Path(self.cfg.out)
        self.progress = progress
        self.times: dict[str, float] = self._load_times()
        self._measured: dict[str, float] = {}  # what this process timed (wins over the file when saving)
        self._train_set = self._eval = None
        self._weighted: dict[tuple, list] = {}

    # -- data --------------------------------------------------------------------------------------
    def train_samples(self, view) -> list:
        if self._train_set is None:
            c = self.cfg
            self._train_set = build_samples(
                c.n_train, c.data_seed, c.family_list, c.world_config(), view=view, progress=self.progress
            )
        return self._train_set

    def eval_samples(self, view) -> list:
        if self._eval is None:
            c, fams = self.cfg, self.cfg.family_list
            self._eval = build_samples(
                c.n_eval * len(fams), c.eval_seed, fams, c.world_config(), view=view, progress=self.progress
            )
        return self._eval

    # -- stages ------------------------------------------------------------------------------------
    def model(self, name: str):
        """The trained policy of stage `name` (see STAGES), trained first if `out/` does not hold it."""
        path = self.out / name
        if not (path / "config.json").is_file():
            self.train_stage(name)
        return load_policy(path, view=self.cfg.view_config())  # the recipe's pixel budgets, whatever the folder says

    def train_stage(self, name: str) -> None:
        if name not in STAGES:
            raise ValueError(f"unknown stage {short(name)}; stages: {list(STAGES)}")
        {
            "base": self._base,
            "sft": self._sft,
            "no_crop": self._sft,
            "rgrpo": self._rgrpo,
            "rgrpo_no_region": self._rgrpo,
        }[name](name)

    def _base(self, name: str) -> None:
        c = self.cfg
        seed_everything(c.seed)
        policy = build_tiny(
            c.tiny_config(),
            view=c.view_config(),
            prompt=PromptConfig(question_first=c.question_first, instruction=c.instruction),
        )
        self._timed(name, lambda: self._run_phases(name, c.base.phases, policy), policy, 0)

    def _sft(self, name: str) -> None:
        policy = self.model("base")
        seed_everything(self.cfg.seed)
        phases = self.cfg.sft.phases if name == "sft" else [self.cfg.no_crop_phase()]
        self._timed(name, lambda: self._run_phases(name, phases, policy), policy, 0)

    # -- the one loop: any list of phases ----------------------------------------------------------------
    def _run_phases(self, stage: str, phases: list, policy):
        """Train each phase, then take its check, adding phases while below its bar; returns the last log."""
        last, before = None, None
        for phase in phases:
            if phase.steps:
                log = self._early(stage, phase, policy) if phase.early_steps() else None
                if log is not None:  # passed inside the phase: the phase ends there
                    last, before = log, phase
                    continue
                last = self._train(stage, phase, policy)
            if phase.checked:
                last = self._until_bar(stage, phases, phase, policy, before if not phase.steps else None) or last
            before = phase
        return last

    def _train(self, stage: str, phase, policy, k: int = -1, steps: int = 0):
        """Train phase `phase` (with `k` >= 0: the phase its check added after round k), to `steps` if given."""
        cfg = self.cfg.phase_config(stage, phase, k)
        cfg = replace(cfg, steps=steps) if steps else cfg
        log = train_sft(policy, self._samples(stage, phase, policy.view, k), cfg)
        if log.last.get("step") != cfg.steps:  # Ctrl-C: saved, returned early
            raise KeyboardInterrupt(f"stage {stage} interrupted; run the recipe again to resume from {cfg.out_dir}")
        return log

    def _early(self, stage: str, phase, policy):
        """Phase `phase`'s check at its step `early_steps()` (round -1): the phase's log when it passes there, else
        None and the phase goes on along the same schedule (laid over all its steps)."""
        logs, main, early = self.out / "logs", dist.info().is_main, phase.early_steps()
        out_dir = Path(self.cfg.phase_config(stage, phase).out_dir)
        if any(int(p.name[5:]) > early for p in out_dir.glob("step_*") if p.name[5:].isdigit()):
            return None  # a run before this one went on past the check
        log = self._train(stage, phase, policy, steps=early)
        done = dist.broadcast_object([r for r in checks.load(logs, phase.name) if r["round"] == -1] if main else None)
        m = done[0] if done else dist.broadcast_object(checks.take(policy, self.cfg, phase))  # on every rank
        if main and not done:
            checks.record(logs, phase.name, -1, early, m)
        return log if checks.passes(m, phase.check) else None

    def _until_bar(self, stage: str, phases: list, phase, policy, before=None):
        """Measure phase `phase`'s check, adding phases (`check.more` steps each) while below its bar; past the last
        round (`check.rounds`), raise CheckError naming the fix. A phase of 0 steps right after a checked one
        measures the same model first: that check's last record is read instead, when it holds this metric."""
        c, logs, last, check = self.cfg, self.out / "logs", None, phase.check
        names = [p.name for p in phases]
        since = names.index(check.since) if check.since in names else names.index(phase.name)
        first = sum(p.steps for p in phases[since : names.index(phase.name) + 1])
        for k in range(check.rounds + 1):
            if k < check.rounds and (logs / f"{stage}_{phase.name}{k + 1}").is_dir():
                # a run before this one measured round k below its bar and began the next phase: go on with it
                last = self._train(stage, phase, policy, k)
                continue
            m = dist.broadcast_object(self._reused(before, phase, k) if dist.info().is_main else None)
            m = m or dist.broadcast_object(checks.take(policy, c, phase))  # measured over the ranks; rank 0's decides
            steps = first + k * check.more
            rows = checks.record(logs, phase.name, k, steps, m) if dist.info().is_main else [{"steps": steps, **m}]
            if checks.passes(m, check):
                return last
            if k == check.rounds:
                raise checks.failure(stage, phase, rows, logs)
            last = self._train(stage, phase, policy, k)
        return last

    def _reused(self, before, phase, k: int) -> dict | None:
        """The last record of the check just taken on this same model (`before`'s), if it holds `phase`'s metric."""
        if k or before is None or not before.checked:
            return None
        rows = checks.load(self.out / "logs", before.name)
        metric = checks.MEASURES[phase.check.measure].metric
        return (
            {key: v for key, v in rows[-1].items() if key not in ("round", "steps")}
            if rows and metric in rows[-1]
            else None
        )

    def _samples(self, stage: str, phase, view, k: int = -1) -> list:
        return phase_samples(self, stage, phase, view, k)  # its mix's source's (phase_data.SOURCES)

    def vlir_samples(self, view, weights: dict | None = None) -> list:
        """The VLIR training set (`n_train` at `data_seed`) in the shares `weights` give its families."""
        c, key = self.cfg, tuple(sorted((weights or {}).items()))
        if not weights:
            return self.train_samples(view)
        if key not in self._weighted:
            self._weighted[key] = build_samples(
                c.n_train,
                c.data_seed,
                c.family_list,
                c.world_config(),
                view=view,
                progress=self.progress,
                weights=weights,
            )
        return self._weighted[key]

    def _rgrpo(self, name: str) -> None:
        c = self.cfg
        policy = self.model("sft")
        seed_everything(c.seed)
        cfg = c.rgrpo_config(name)
        samples = self.vlir_samples(policy.view, c.rgrpo_weights)
        self._timed(name, lambda: train_rgrpo(policy, samples, cfg), policy, cfg.steps)

    def _timed(self, name: str, fn, policy, steps: int) -> None:
        t0 = time.perf_counter()
        log = fn()
        if steps and log.last.get("step") != steps:  # Ctrl-C: train() saved and returned early
            raise KeyboardInterrupt(
                f"stage {name} interrupted; run the recipe again to resume from {self.out / 'logs' / name}"
            )
        if dist.info().is_main:
            policy.save(self.out / name)
            self._save_times(name, time.perf_counter() - t0)
        dist.barrier()

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate_row(self, row: str) -> dict:
        """Evaluate one row (training what it needs first); cached in out/eval/<row>.json."""
        path = self.out / "eval" / f"{row}.json"
        if path.is_file():
            return json.loads(path.read_text())
        policy = self.model(MODEL_OF[row])
        view = policy.view
        boxes = {"oracle": oracle_boxes(view), "random": random_boxes(view, self.cfg.seed)}.get(row)
        ecfg = self.cfg.eval_config(row)
        samples = self.eval_samples(view)
        t0 = time.perf_counter()
        res = evaluate(policy, samples, ecfg, progress=self.progress, crop_boxes=boxes)
        self._save_times(f"eval_{row}", time.perf_counter() - t0)
        out = {"row": row, "rows": res.rows, "seconds": res.seconds}
        atomic_write_text(path, json.dumps(out, indent=1))
        return out

    def run(self) -> dict:
        """Every requested row, then results.json, table.md and (if `ship`) the shipped checkpoints."""
        self._check_config()
        t0, fresh = time.perf_counter(), not any(self.done(j) for j in self.jobs())
        if self.cfg.parallel > 1:
            self._run_jobs()
        rows = {}
        for row in tqdm(self.cfg.row_list, desc="recipe rows", disable=progress_disabled(self.progress)):
            rows[row] = self.evaluate_row(row)["rows"]
        if fresh and dist.info().is_main:  # a whole run from nothing: its wall time (not a resumed one's)
            self._save_times("wall", time.perf_counter() - t0)
        results = {
            "config": {"format_version": FORMAT_VERSION, **asdict(self.cfg)},
            "rows": rows,
            "seconds": dict(self.times),
        }
        for phase in self.cfg.phases():
            if rows := checks.load(self.out / "logs", phase.name):
                results[f"{phase.name}_checks"] = rows
        if (prov := self.out / PROVENANCE).is_file():  # stages that came from elsewhere say so in the card
            results["provenance"] = prov.read_text().strip()
        atomic_write_text(self.out / "results.json", json.dumps(results, indent=1))
        atomic_write_text(self.out / "table.md", markdown_table(results))
        if self.cfg.ship:
            ship(results, self.out, self.cfg.ship)
        return results

    # -- parallel jobs -------------------------------------------------------------------------------
    def jobs(self) -> dict[str, tuple[str, ...]]:
        """Every stage and evaluation the requested rows need, each with the jobs it waits for."""
        jobs: dict[str, tuple[str, ...]] = {}

        def need(stage):
            for dep in STAGES[stage]:
                need(dep)
            jobs[f"stage:{stage}"] = tuple(f"stage:{d}" for d in STAGES[stage])

        for row in self.cfg.row_list:
            need(MODEL_OF[row])
        for row in self.cfg.row_list:
            jobs[f"eval:{row}"] = (f"stage:{MODEL_OF[row]}",)
        return jobs

    def done(self, job: str) -> bool:
        kind, name = job.split(":")
        return (self.out / name / "config.json" if kind == "stage" else self.out / "eval" / f"{name}.json").is_file()

    def _run_jobs(self) -> None:
        order = list(CRITICAL) + [f"stage:{s}" for s in STAGES]  # critical stages first, then stages, then evaluations
        try:
            run_jobs(self.jobs(), self.done, self.out, __name__, self.cfg.parallel, order, CRITICAL, self.progress)
        except RuntimeError as e:  # a job's check fell short: the same one line as in one process
            if failed := sorted((self.out / "logs" / "jobs").glob("*" + FAILED)):
                raise checks.CheckError(failed[0].read_text()) from e
            raise
        self.times = self._load_times()

    def _load_times(self) -> dict:
        p = self.out / "times.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def _check_config(self) -> None:
        """Stages in `out/` are reused, so they must come from the same settings (out/recipe.json)."""
        check_folder(self.cfg, self.out)

    def _save_times(self, key: str, seconds: float) -> None:
        # merge with the file: several `r3lab recipe --rows ...` (for different stages) may share one folder
        self._measured[key] = round(seconds, 1)
        with file_lock(self.out / ".times.lock"):  # parallel jobs each add theirs: none may overwrite another's
            self.times = {**self._load_times(), **self._measured}
            atomic_write_text(self.out / "times.json", json.dumps(self.times, indent=1))


def run_job(out: str, job: str) -> None:
    """One job of `Recipe._run_jobs` in this process (or these torchrun ranks): `stage:NAME` or `eval:ROW`."""
    rec = Recipe(RecipeConfig.from_settings(**read_recipe(out), out=out, parallel=1), progress=False)
    kind, name = job.split(":")
    failed = Path(out) / "logs" / "jobs" / (job.replace(":", "_") + FAILED)
    failed.unlink(missing_ok=True)
    dist.init()
    try:
        if kind == "stage":
            rec.train_stage(name)
        else:
            rec.evaluate_row(name)
    except checks.CheckError as e:  # for the scheduler: the error its user is shown
        if dist.info().is_main:
            atomic_write_text(failed, str(e))
        raise
    finally:
        dist.shutdown()


def run_recipe(config: RecipeConfig | None = None, progress: bool | None = None) -> dict:
    """Train and evaluate everything `config` asks for; returns the results dict (also saved)."""
    return Recipe(config, progress).run()


if __name__ == "__main__":  # a job of `Recipe._run_jobs`: python -m <this module> OUT JOB
    run_job(sys.argv[1], sys.argv[2])
