"""The miniature replication: r3-tiny from nothing to the six-row comparison, one command.

Stages (each saved under `out/`, skipped when already there, so an interrupted run resumes): a base (`base/`:
grounding, "Where is the red circle?" answered with its crop call, checked on held-out questions; a phase naming
landmarks in pairs; close-ups whose crop the environment opens, first of colour marks, then of the recipe's detail
(the grating: close-ups alone, then mixed with grounding questions), answered with it and checked on held-out
close-ups; a verdict drill of comparisons without images, checked on held-out text comparisons; and a comparison
phase where half the samples give both looks, crops and reads, and ask for the verdict), VLIR SFT from it (`sft/`),
the same samples answered without crops (`no_crop/`, also from `base`), R-GRPO from the SFT model with and without
the region reward (`rgrpo/`, `rgrpo_no_region/`). Rows of the table:

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
from ..core.prompt import PromptConfig
from ..data.grounding import build_base
from ..data.vlir import build_samples
from ..model.policy import load_policy
from ..model.tiny import build_tiny
from ..train import dist
from ..core.files import atomic_write_text, file_lock
from ..train.rgrpo import train as train_rgrpo
from ..train.sft import train as train_sft
from . import compare_check, drill_check, ground_check, read_check, sft_check, sft_read_check
from .ablations import answer_only, oracle_boxes, random_boxes
from .evaluation import evaluate
from .jobs import run_jobs
from .phase_data import added_data, drill_data, first_read_data, pairs_data, read_data
from .report import markdown_table
from .recipe_config import MODEL_OF, R3_TINY, ROWS, STAGES, RecipeConfig, earlier_settings, saved_recipe
from .shipping import ship

__all__ = ["R3_TINY", "ROWS", "RecipeConfig", "Recipe", "run_recipe", "run_job"]  # config names re-exported

CRITICAL = ("stage:base", "stage:sft")  # every other job waits for these: they run alone, on all cores
# the phases measured after they end: kind -> (check module, the metric held to <kind>_min, the steps before the
# first check: its phases' settings)
CHECKED = {"ground": (ground_check, "centre_on_named", ("base_steps",)),
           "read": (read_check, "read_accuracy", ("read_focus_steps", "read_steps")),
           "drill": (drill_check, "text_verdict", ("compare_drill_steps",)), "sft_read": (sft_read_check, "read_one", ()),
           "compare": (compare_check, "verdict", ("compare_steps",)), "sft": (sft_check, "compare_two", ("sft_steps",))}
# each check's cap on added phases: a saved stage passed within it, so a larger cap reuses that stage
ROUND_CAPS = tuple(k for m in (ground_check.GROUND_KEYS, read_check.READ_KEYS, drill_check.DRILL_KEYS,
                               compare_check.COMPARE_KEYS, sft_check.SFT_KEYS, sft_read_check.SFT_READ_KEYS)
                   for k in m if k.endswith("_rounds"))
PROVENANCE = "PROVENANCE.md"  # in out/: where stages not trained by this folder's recipe came from (copied to the card)


class Recipe:
    """Runs the stages of a RecipeConfig, reusing what `out/` already holds.

    Several processes may share `out/` when they ask for rows that need different stages (e.g.
    `--rows sft,oracle` next to `--rows no_crop`); two processes training the same stage would clash.
    """

    def __init__(self, config: RecipeConfig | None = None, progress: bool | None = None):
        self.cfg = config or RecipeConfig()
        self.out = Path(self.cfg.out)
        self.progress = progress
        self.times: dict[str, float] = self._load_times()
        self._measured: dict[str, float] = {}  # what this process timed (wins over the file when saving)
        self._train = self._eval = None

    # -- data --------------------------------------------------------------------------------------
    def train_samples(self, view) -> list:
        if self._train is None:
            c = self.cfg
            self._train = build_samples(c.n_train, c.data_seed, c.family_list, c.world_config(), view=view,
                                        progress=self.progress)
        return self._train

    def eval_samples(self, view) -> list:
        if self._eval is None:
            c, fams = self.cfg, self.cfg.family_list
            self._eval = build_samples(c.n_eval * len(fams), c.eval_seed, fams, c.world_config(), view=view,
                                       progress=self.progress)
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
            raise ValueError(f"unknown stage {name!r}; stages: {list(STAGES)}")
        {"base": self._base, "sft": self._sft, "no_crop": self._sft, "rgrpo": self._rgrpo,
         "rgrpo_no_region": self._rgrpo}[name](name)

    def _base(self, name: str) -> None:
        c = self.cfg
        seed_everything(c.seed)
        policy = build_tiny(c.tiny_config(), view=c.view_config(), prompt=PromptConfig(
            question_first=c.question_first, instruction=c.instruction))
        samples = build_base(c.n_base, c.data_seed, c.base_closeups, c.world_config(base=True), view=policy.view,
                             pairs=c.base_pairs, progress=self.progress)
        phases = [("ground", c.sft_config(name, c.base_steps, c.base_batch, c.base_lr, horizon=c.base_steps), samples)]
        if c.pairs_steps:  # after the check: the grounding phase's world, two landmarks named in pairs_share of them
            phases.append(("pairs", c.sft_config(name, c.pairs_steps, c.base_batch, c.base_lr, phase="pairs"),
                           pairs_data(c, policy.view, self.progress)))
        # later phases: the recipe's world, a fresh warm-up and cosine each; their own data seeds
        if c.read_first_steps:  # colour-mark close-ups (a detail the coarse view shows) and grounding questions
            phases.append(("read_first", c.sft_config(name, c.read_first_steps, c.base_batch, c.base_lr,
                                                      phase="read_first"), first_read_data(c, policy.view, self.progress)))
        if c.read_focus_steps:  # close-ups and control questions alone; the read phase after it restores grounding
            data = read_data(c, c.read_focus_steps, c.data_seed + 6, policy.view, self.progress, closeups=1.0)
            phases.append(("read_focus", c.sft_config(name, c.read_focus_steps, c.base_batch, c.base_lr,
                                                      phase="read_focus"), data))
        for phase, steps, comparisons, seed, style in (
                ("read", c.read_steps, 0.0, c.data_seed + 1, "answer"),
                ("compare", c.compare_steps, c.compare_share, c.data_seed + 2, c.compare_closeups)):
            if phase == "compare" and steps and c.compare_drill_steps:  # the verdict from text alone, then with the crops
                data = drill_data(c, c.compare_drill_steps, c.data_seed + 5, policy.view, self.progress)
                phases.append(("drill", c.drill_config(name, c.compare_drill_steps, "drill"), data))
            if steps:
                data = read_data(c, steps, seed, policy.view, self.progress, comparisons, style,
                                 c.compare_closeup_share if phase == "compare" else None)
                phases.append((phase, c.sft_config(name, steps, c.base_batch, c.base_lr, phase=phase), data))

        def run_phase(cfg, data):
            last = train_sft(policy, data, cfg)
            if last.last.get("step") != cfg.steps:  # Ctrl-C: saved, returned early
                raise KeyboardInterrupt(f"stage {name} interrupted; run the recipe again to resume from {cfg.out_dir}")
            return last

        def run_phases():
            last = None
            for phase, cfg, data in phases:
                if phase == "ground" and c.ground_early_steps and (last := self._ground_early(policy, run_phase, cfg, data)):
                    continue  # bound at ground_early_steps: the grounding phase ends there
                last = run_phase(cfg, data)
                if phase in CHECKED and getattr(c, f"{phase}_check"):
                    last = self._until_bar(phase, name, policy, run_phase) or last
            return last
        self._timed(name, run_phases, policy, 0)  # run_phase checks that each phase ran to its end

    def _ground_early(self, policy, run_phase, cfg, data):
        """The grounding check at step ground_early_steps of the grounding phase (its checks' round -1): the phase's
        log when it passes there, else None and the phase goes on along the same schedule (`cfg`, to base_steps)."""
        c, logs, main, early = self.cfg, self.out / "logs", dist.info().is_main, self.cfg.ground_early_steps
        if any(int(p.name[5:]) > early for p in Path(cfg.out_dir).glob("step_*") if p.name[5:].isdigit()):
            return None  # a run before this one went on past the check
        log = run_phase(replace(cfg, steps=early), data)
        done = dist.broadcast_object([r for r in ground_check.load(logs) if r["round"] == -1] if main else None)
        m = done[0] if done else dist.broadcast_object(self._measure("ground", policy))  # measured on every rank
        if main and not done:
            ground_check.record(logs, -1, early, m)
        return log if m["centre_on_named"] >= c.ground_min else None

    def _until_bar(self, kind: str, name: str, policy, run_phase):
        """After the grounding, read, comparison or SFT phase (`kind`): measure, and add phases (`<kind>_more` steps
        each) while below the bar (`<kind>_min`); past the last round (`<kind>_rounds`), raise naming the fix."""
        c, logs, last = self.cfg, self.out / "logs", None
        check, key, first = CHECKED[kind]
        rounds, more, bar = (getattr(c, f"{kind}_{k}") for k in ("rounds", "more", "min"))
        for k in range(rounds + 1):
            if k < rounds and (logs / f"{name}_{kind}{k + 1}").is_dir():
                # a run before this one measured round k below its bar and began the next phase: go on with it
                last = run_phase(*self._added_phase(kind, name, k, policy.view))
                continue
            m = dist.broadcast_object(self._measure(kind, policy, k))  # measured over the ranks; rank 0's decides
            steps = sum(getattr(c, f) for f in first) + k * more
            rows = check.record(logs, k, steps, m) if dist.info().is_main else [{"steps": steps, **m}]
            if (compare_check.passes(m, bar, c.compare_ground_min) if kind == "compare" else m[key] >= bar):
                return last
            if k == rounds:
                raise (compare_check.failure(rows, bar, logs, c.compare_ground_min) if kind == "compare"
                       else check.failure(rows, bar, logs))
            last = run_phase(*self._added_phase(kind, name, k, policy.view))
        return last

    def _measure(self, kind: str, policy, k: int = 0) -> dict:
        c = self.cfg
        if kind == "sft_read" and k == 0 and c.sft_check and (rows := dist.broadcast_object(  # rank 0 wrote it
                sft_check.load(self.out / "logs") if dist.info().is_main else None)):
            return {key: v for key, v in rows[-1].items() if key not in ("round", "steps")}  # this very state
        if kind == "sft_read":
            return sft_read_check.measure(policy, c.world_config(), c.eval_config("sft"), c.sft_check, c.sft_read_min)
        if kind == "sft":
            return sft_check.measure(policy, c.world_config(), c.eval_config("sft"), c.sft_check)
        if kind == "ground":
            return ground_check.measure(policy, {**c.world, **c.base_world}, c.ground_check)
        if kind == "read":
            return read_check.read_accuracy(policy, c.world_config(), c.read_check)
        if kind == "drill":
            return drill_check.text_verdict(policy, c.world_config(), c.drill_check, reads=c.compare_drill_reads)
        return compare_check.measure(policy, c.world_config(), c.compare_check,
                                     {**c.world, **c.base_world} if c.compare_ground_min else None)

    def _added_phase(self, kind: str, name: str, k: int, view):
        """The grounding, read, comparison or SFT phase added after check `k`: a fresh warm-up and cosine, fresh
        samples (SFT: its own samples in another order)."""
        c = self.cfg
        if kind == "sft":
            cfg = c.sft_config(name, c.sft_more, c.sft_batch, c.sft_lr, phase=f"{kind}{k + 1}")
            return replace(cfg, seed=c.seed + 100 + k), self._sft_samples(view, c.sft_first_weights(name))
        if kind == "sft_read":  # the whole mix, read_one included
            cfg = c.sft_config(name, c.sft_read_more, c.sft_batch, c.sft_read_lr, phase=f"{kind}{k + 1}")
            return replace(cfg, seed=c.seed + 200 + k), self._sft_samples(view)
        steps, data = added_data(c, kind, k, view, self.progress)
        if kind == "drill":
            return c.drill_config(name, steps, f"{kind}{k + 1}"), data
        return c.sft_config(name, steps, c.base_batch, c.base_lr, phase=f"{kind}{k + 1}"), data

    def _sft(self, name: str) -> None:
        c = self.cfg
        policy = self.model("base")
        seed_everything(c.seed)
        samples = self._sft_samples(policy.view, c.sft_first_weights(name))
        if name == "no_crop":  # the ablation trains sft_steps, unchecked: without crops it stays near chance anyway
            samples = [answer_only(s) for s in samples]
        cfg = c.sft_config(name, c.sft_steps, c.sft_batch, c.sft_lr)

        def run_phase(phase_cfg, data):
            log = train_sft(policy, data, phase_cfg)
            if log.last.get("step") != phase_cfg.steps:  # Ctrl-C: saved, returned early
                raise KeyboardInterrupt(f"stage {name} interrupted; run the recipe again to resume from "
                                        f"{phase_cfg.out_dir}")
            return log

        def run_phases():
            log = run_phase(cfg, samples)
            if name == "sft" and c.sft_check:
                log = self._until_bar("sft", name, policy, run_phase) or log
            if name == "sft" and c.sft_read_rounds:  # read_one last: phases at the whole mix until it reads
                log = self._until_bar("sft_read", name, policy, run_phase) or log
            return log
        self._timed(name, run_phases, policy, 0)  # run_phase checks that each phase ran to its end

    def _sft_samples(self, view, weights: dict | None = None) -> list:  # at `weights`, by default sft_mix's
        c, weights = self.cfg, self.cfg.sft_weights if weights is None else weights
        return self.train_samples(view) if not weights else build_samples(
            c.n_train, c.data_seed, c.family_list, c.world_config(), view=view, progress=self.progress, weights=weights)

    def _rgrpo(self, name: str) -> None:
        c = self.cfg
        policy = self.model("sft")
        seed_everything(c.seed)
        cfg = c.rgrpo_config(name)
        samples = self.train_samples(policy.view) if not c.rgrpo_weights else build_samples(
            c.n_train, c.data_seed, c.family_list, c.world_config(), view=policy.view, progress=self.progress,
            weights=c.rgrpo_weights)
        self._timed(name, lambda: train_rgrpo(policy, samples, cfg), policy, cfg.steps)

    def _timed(self, name: str, fn, policy, steps: int) -> None:
        t0 = time.perf_counter()
        log = fn()
        if steps and log.last.get("step") != steps:  # Ctrl-C: train() saved and returned early
            raise KeyboardInterrupt(f"stage {name} interrupted; run the recipe again to resume from "
                                    f"{self.out / 'logs' / name}")
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
        results = {"config": asdict(self.cfg), "rows": rows, "seconds": dict(self.times)}
        for kind, (check, _, _) in CHECKED.items():
            if checks := check.load(self.out / "logs"):
                results[f"{kind}_checks"] = checks
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
        run_jobs(self.jobs(), self.done, self.out, __name__, self.cfg.parallel, order, CRITICAL, self.progress)
        self.times = self._load_times()

    def _load_times(self) -> dict:
        p = self.out / "times.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def _check_config(self) -> None:
        """Stages in `out/` are reused, so they must come from the same settings (out/recipe.json)."""
        mine = saved_recipe(self.cfg)
        path = self.out / "recipe.json"
        if not path.is_file():
            atomic_write_text(path, json.dumps(mine, indent=1))
            return
        theirs = earlier_settings(json.loads(path.read_text()))
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        base_keys = set(ground_check.GROUND_KEYS + read_check.READ_KEYS + drill_check.DRILL_KEYS
                        + compare_check.COMPARE_KEYS)
        if diff and (set(diff) <= base_keys and not (self.out / "base" / "config.json").is_file()
                     or set(diff) <= set(sft_check.SFT_KEYS + sft_read_check.SFT_READ_KEYS) and not (self.out / "sft" / "config.json").is_file()):
            atomic_write_text(path, json.dumps(mine, indent=1))  # going on after a Grounding/.../SFTCheckError: allowed
            return
        if diff and all(k in ROUND_CAPS and isinstance(a, int) and b >= a for k, (a, b) in diff.items()):
            atomic_write_text(path, json.dumps(mine, indent=1))  # a saved stage passed within the smaller cap
            return
        if diff:
            raise ValueError(f"{self.out} holds stages trained with other settings "
                             + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
                             + "; use another --out, or delete that folder to start over")

    def _save_times(self, key: str, seconds: float) -> None:
        # merge with the file: several `r3lab recipe --rows ...` (for different stages) may share one folder
        self._measured[key] = round(seconds, 1)
        with file_lock(self.out / ".times.lock"):  # parallel jobs each add theirs: none may overwrite another's
            self.times = {**self._load_times(), **self._measured}
            atomic_write_text(self.out / "times.json", json.dumps(self.times, indent=1))


def run_job(out: str, job: str) -> None:
    """One job of `Recipe._run_jobs` in this process (or these torchrun ranks): `stage:NAME` or `eval:ROW`."""
    saved = earlier_settings(json.loads((Path(out) / "recipe.json").read_text()))
    rec = Recipe(RecipeConfig(**saved, out=out, parallel=1), progress=False)
    kind, name = job.split(":")
    dist.init()
    try:
        if kind == "stage":
            rec.train_stage(name)
        else:
            rec.evaluate_row(name)
    finally:
        dist.shutdown()


def run_recipe(config: RecipeConfig | None = None, progress: bool | None = None) -> dict:
    """Train and evaluate everything `config` asks for; returns the results dict (also saved)."""
    return Recipe(config, progress).run()


if __name__ == "__main__":  # a job of `Recipe._run_jobs`: python -m <this module> OUT JOB
    run_job(sys.argv[1], sys.argv[2])
