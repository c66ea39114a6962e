"""The miniature replication: r3-tiny from nothing to the six-row comparison of issue 6, one command.

Stages (each saved under `out/`, skipped when already there, so an interrupted run resumes):
VLIR SFT (`sft/`), the same samples answered without crops (`no_crop/`), R-GRPO from the SFT model
with and without the region-IoU reward (`rgrpo/`, `rgrpo_no_region/`). Rows of the table:

    no_crop          trained on the same samples with the crops removed, evaluated with max_crops=0
    sft              VLIR SFT
    sft_rgrpo        SFT + R-GRPO (accuracy + format + region IoU)
    rgrpo_no_region  SFT + R-GRPO without the region reward
    oracle           the SFT model; each crop it asks for is the ground-truth region (upper bound)
    random           the SFT model; each crop it asks for is a random box of the ground truth's size

Every row is evaluated greedily on the same held-out samples (`n_eval` per family, a seed disjoint
from training) with bootstrap 95% intervals; `out/eval/<row>.json` per row, `out/results.json` and
`out/table.md` for all. Wall time per stage is recorded.
"""
from __future__ import annotations

import json
import shutil
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from random import Random
from typing import Sequence

from .checkpoint import atomic_write_text
from .env import seed_everything
from .evaluate import EvalConfig, evaluate
from .trajectory import MODEL, Piece

ROWS = ("no_crop", "sft", "sft_rgrpo", "rgrpo_no_region", "oracle", "random")
RERUNNABLE = ("out", "rows", "ship")  # settings that do not change any saved stage or evaluation
MODEL_OF = {"no_crop": "no_crop", "sft": "sft", "sft_rgrpo": "rgrpo", "rgrpo_no_region": "rgrpo_no_region",
            "oracle": "sft", "random": "sft"}


@dataclass
class RecipeConfig:
    """The whole miniature replication: data, the four trained models, the evaluation."""

    out: str = "runs/recipe"  # stage checkpoints, eval/<row>.json, results.json, table.md
    rows: str = ",".join(ROWS)  # comma-separated rows to evaluate (the stages they need are trained)
    seed: int = 0  # model initialisation, data order and rollout sampling
    data_seed: int = 1  # training samples
    eval_seed: int = 999  # held-out samples (a seed never used for training)
    families: str = "read_one,compare_two,count,control"  # task families, training and evaluation
    patch_size: int = 7  # r3-tiny's vision patch side (7: 4x the image tokens of 14, ~2x the cost per step)
    n_train: int = 8000  # VLIR training samples (the same for every row)
    n_eval: int = 1000  # held-out samples per family
    sft_steps: int = 2000  # SFT optimizer steps (both SFT models)
    sft_batch: int = 16  # SFT samples per step
    sft_lr: float = 1e-3  # SFT peak learning rate (all parameter groups)
    rgrpo_steps: int = 150  # R-GRPO rollout steps (both R-GRPO models)
    group_size: int = 8  # R-GRPO rollouts per prompt
    rgrpo_batch: int = 32  # R-GRPO trajectories per step
    rgrpo_lr: float = 5e-5  # R-GRPO learning rate (language model; the vision tower is frozen)
    iou_weight: float = 1.0  # weight of the region-IoU reward in the sft_rgrpo row
    rewards: str = "code"  # reward preset ("code", "paper", "accuracy")
    beta: float = 0.0  # KL weight to the SFT model during R-GRPO
    max_crops: int = 2  # crops honoured per answer (training rollouts and evaluation)
    max_new_tokens: int = 128  # model tokens per answer
    ship: str = ""  # copy the SFT / R-GRPO checkpoints and a model card into this folder (e.g. assets/checkpoints)

    def __post_init__(self):
        """Fail before an hour of training, not after it."""
        from .rewards import preset
        from .tasks import ALL_FAMILIES

        self.families = ",".join(self.family_list)  # one spelling everywhere (tables, check sets)
        bad = [f for f in self.family_list if f not in ALL_FAMILIES]
        if bad or not self.family_list:
            raise ValueError(f"unknown task families {bad or self.families!r}; choose from {list(ALL_FAMILIES)}")
        self.row_list  # noqa: B018  (validates rows)
        preset(self.rewards)  # raises naming the known presets
        small = {k: getattr(self, k) for k in ("n_train", "n_eval", "sft_batch", "rgrpo_batch") if getattr(self, k) < 1}
        if small or self.sft_steps < 0 or self.rgrpo_steps < 0:
            raise ValueError(f"sizes must be >= 1 and steps >= 0, got {small or (self.sft_steps, self.rgrpo_steps)}")
        if self.group_size < 2 or self.rgrpo_batch % self.group_size:
            raise ValueError(f"group_size must be >= 2 and divide rgrpo_batch, got {self.group_size} and "
                             f"{self.rgrpo_batch}")

    @property
    def row_list(self) -> list[str]:
        rows = [r.strip() for r in self.rows.split(",") if r.strip()]
        bad = [r for r in rows if r not in ROWS]
        if bad or not rows:
            raise ValueError(f"unknown rows {bad or rows}; choose from {list(ROWS)}")
        return rows

    @property
    def family_list(self) -> list[str]:
        return [f.strip() for f in self.families.split(",") if f.strip()]


def answer_only(sample):
    """The same sample with its rationale reduced to a direct answer (the no-crop training target)."""
    text = f"<think>I answer from the whole image.</think><answer>{sample.answer}</answer><|im_end|>"
    return replace(sample, rationale=[Piece(MODEL, text, tag="answer")])


def _frame(sample, view):
    from .regions import Frame
    from .vlir import image_size

    return Frame.of(image_size(sample), view)


def oracle_boxes(view):
    """crop_boxes for `rollout`: the k-th crop is the sample's k-th ground-truth region, boxed exactly as
    in the VLIR reference rationales (`world.region_input_box`)."""
    from .world import region_input_box

    def box(sample, k):
        return region_input_box(sample.regions[k], _frame(sample, view)) if k < len(sample.regions) else None
    return box


def random_boxes(view, seed: int = 0):
    """crop_boxes for `rollout`: a box of the k-th ground-truth region's size at a random place."""
    from .world import region_input_box

    def box(sample, k):
        frame = _frame(sample, view)
        W, H = frame.input_w, frame.input_h
        if sample.regions:
            x1, y1, x2, y2 = region_input_box(sample.regions[min(k, len(sample.regions) - 1)], frame)
            w, h = x2 - x1, y2 - y1
        else:
            w = h = min(W, H) / 8
        rng = Random(zlib.crc32(f"{seed}/{sample.sample_id}/{k}".encode()))
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        return (x, y, x + w, y + h)
    return box


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
        from .vlir import build_samples

        if self._train is None:
            self._train = build_samples(self.cfg.n_train, self.cfg.data_seed, self.cfg.family_list, view=view,
                                        progress=self.progress)
        return self._train

    def eval_samples(self, view) -> list:
        from .vlir import build_samples

        if self._eval is None:
            fams = self.cfg.family_list
            self._eval = build_samples(self.cfg.n_eval * len(fams), self.cfg.eval_seed, fams, view=view,
                                       progress=self.progress)
        return self._eval

    # -- stages ------------------------------------------------------------------------------------
    def model(self, name: str):
        """The trained policy of stage `name` ("sft", "no_crop", "rgrpo", "rgrpo_no_region")."""
        from .models import load_policy

        path = self.out / name
        if not (path / "config.json").is_file():
            {"sft": self._sft, "no_crop": self._sft, "rgrpo": self._rgrpo,
             "rgrpo_no_region": self._rgrpo}[name](name)
        return load_policy(path)

    def _sft(self, name: str) -> None:
        from .models import TinyConfig, build_tiny
        from .sft import SFTConfig, train

        seed_everything(self.cfg.seed)
        policy = build_tiny(TinyConfig(patch_size=self.cfg.patch_size))
        samples = self.train_samples(policy.view)
        if name == "no_crop":
            samples = [answer_only(s) for s in samples]
        c = self.cfg
        cfg = SFTConfig(steps=c.sft_steps, batch_size=c.sft_batch, lr_lm=c.sft_lr, lr_merger=c.sft_lr,
                        lr_vision=c.sft_lr, warmup=min(50, max(1, c.sft_steps // 10)), seed=c.seed, log_every=10,
                        out_dir=str(self.out / "logs" / name), resume=True)
        self._timed(name, lambda: train(policy, samples, cfg), policy, cfg.steps)

    def _rgrpo(self, name: str) -> None:
        from .rgrpo import RGRPOConfig, train

        c = self.cfg
        policy = self.model("sft")
        seed_everything(c.seed)
        cfg = RGRPOConfig(steps=c.rgrpo_steps, group_size=c.group_size, batch_size=c.rgrpo_batch,
                          micro_rows=min(16, c.rgrpo_batch), lr_lm=c.rgrpo_lr, lr_merger=c.rgrpo_lr,
                          rewards=c.rewards, iou_weight=c.iou_weight if name == "rgrpo" else 0.0, beta=c.beta,
                          max_crops=c.max_crops, max_new_tokens=c.max_new_tokens, seed=c.seed, log_every=5,
                          out_dir=str(self.out / "logs" / name), resume=True)
        self._timed(name, lambda: train(policy, self.train_samples(policy.view), cfg.validate()), policy, cfg.steps)

    def _timed(self, name: str, fn, policy, steps: int) -> None:
        t0 = time.perf_counter()
        log = fn()
        if steps and log.last.get("step") != steps:  # Ctrl-C: train() saved and returned early
            raise KeyboardInterrupt(f"stage {name} interrupted; run the recipe again to resume from "
                                    f"{self.out / 'logs' / name}")
        policy.save(self.out / name)
        self._save_times(name, time.perf_counter() - t0)

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate_row(self, row: str) -> dict:
        """Evaluate one row (training what it needs first); cached in out/eval/<row>.json."""
        path = self.out / "eval" / f"{row}.json"
        if path.is_file():
            return json.loads(path.read_text())
        policy = self.model(MODEL_OF[row])
        view = policy.view
        boxes = {"oracle": oracle_boxes(view), "random": random_boxes(view, self.cfg.seed)}.get(row)
        ecfg = EvalConfig(max_crops=0 if row == "no_crop" else self.cfg.max_crops,
                          max_new_tokens=self.cfg.max_new_tokens, max_segment_tokens=64, rewards=self.cfg.rewards,
                          iou_weight=self.cfg.iou_weight, batch_rows=64)
        samples = self.eval_samples(view)
        t0 = time.perf_counter()
        res = evaluate(policy, samples, ecfg, progress=self.progress, crop_boxes=boxes)
        self._save_times(f"eval_{row}", time.perf_counter() - t0)
        out = {"row": row, "rows": res.rows, "seconds": res.seconds}
        atomic_write_text(path, json.dumps(out, indent=1))
        return out

    def run(self) -> dict:
        """Every requested row, then results.json, table.md and (if `ship`) the shipped checkpoints."""
        from tqdm.auto import tqdm

        from .ablations import markdown_table

        self._check_config()
        rows = {}
        for row in tqdm(self.cfg.row_list, desc="recipe rows", disable=self.progress is False):
            rows[row] = self.evaluate_row(row)["rows"]
        results = {"config": asdict(self.cfg), "rows": rows, "seconds": dict(self.times)}
        atomic_write_text(self.out / "results.json", json.dumps(results, indent=1))
        atomic_write_text(self.out / "table.md", markdown_table(results))
        if self.cfg.ship:
            ship(results, self.out, self.cfg.ship)
        return results

    def _load_times(self) -> dict:
        p = self.out / "times.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def _check_config(self) -> None:
        """Stages in `out/` are reused, so they must come from the same settings (out/recipe.json)."""
        mine = {k: v for k, v in asdict(self.cfg).items() if k not in RERUNNABLE}
        path = self.out / "recipe.json"
        if not path.is_file():
            atomic_write_text(path, json.dumps(mine, indent=1))
            return
        theirs = json.loads(path.read_text())
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        if diff:
            raise ValueError(f"{self.out} holds stages trained with other settings "
                             + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
                             + "; use another --out, or delete that folder to start over")

    def _save_times(self, key: str, seconds: float) -> None:
        # merge with the file: several `r3lab recipe --rows ...` (for different stages) may share one folder
        self._measured[key] = round(seconds, 1)
        self.times = {**self._load_times(), **self._measured}
        atomic_write_text(self.out / "times.json", json.dumps(self.times, indent=1))


def run_recipe(config: RecipeConfig | None = None, progress: bool | None = None) -> dict:
    """Train and evaluate everything `config` asks for; returns the results dict (also saved)."""
    return Recipe(config, progress).run()


def ship(results: dict, out: str | Path, dest: str | Path) -> Path:
    """Copy the SFT and R-GRPO checkpoints to dest/r3-tiny-sft, dest/r3-tiny-rgrpo with MODEL_CARD.md."""
    from .ablations import model_card

    out, dest = Path(out), Path(dest)
    pairs = (("sft", "r3-tiny-sft"), ("rgrpo", "r3-tiny-rgrpo"))
    missing = [str(out / stage) for stage, _ in pairs if not (out / stage / "config.json").is_file()]
    if missing:  # checked before anything in dest is touched
        raise FileNotFoundError(f"{', '.join(missing)} holds no checkpoint: run the recipe with rows sft,sft_rgrpo")
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"ship destination {dest} is a file: give a folder, e.g. assets/checkpoints")
    for stage, name in pairs:
        shutil.rmtree(dest / name, ignore_errors=True)
        shutil.copytree(out / stage, dest / name)
    results = dict(results, check={name: check_scores(dest / name, results["config"])
                                   for name in ("r3-tiny-sft", "r3-tiny-rgrpo")})
    (dest / "MODEL_CARD.md").write_text(model_card(results))
    (dest / "card_results.json").write_text(json.dumps(results, indent=1))
    return dest


def check_set(config: dict, view, per_family: int = 8) -> list:
    """The small fixed set the model card's check numbers are measured on (seed eval_seed + 1)."""
    from .vlir import build_samples

    fams = [f.strip() for f in config["families"].split(",") if f.strip()]
    return build_samples(per_family * len(fams), config["eval_seed"] + 1, fams, view=view, progress=False)


def check_scores(path: str | Path, config: dict, per_family: int = 8) -> dict:
    """Greedy accuracy / crop rate / crops of a checkpoint on `check_set` (what the shipped-model test re-measures)."""
    from .models import load_policy

    policy = load_policy(path)
    res = evaluate(policy, check_set(config, policy.view, per_family),
                   EvalConfig(max_crops=config["max_crops"], max_new_tokens=config["max_new_tokens"],
                              max_segment_tokens=64), progress=False)
    return {k: res.rows["all"][k] for k in ("n", "accuracy", "crop_rate", "crops")}


def warm_start(out: str | Path, shipped: str | Path, stages: Sequence[str] = ("sft", "rgrpo")) -> list[str]:
    """Copy shipped checkpoints (dest of `ship`) into a recipe folder as its sft/ and rgrpo/ stages.

    Returns the stages copied; a later `run_recipe` with the same `out` trains only the rest.
    """
    out, shipped, done = Path(out), Path(shipped), []
    for stage, name in (("sft", "r3-tiny-sft"), ("rgrpo", "r3-tiny-rgrpo")):
        if stage not in stages:
            continue
        if (shipped / name / "config.json").is_file() and not (out / stage / "config.json").is_file():
            shutil.copytree(shipped / name, out / stage, dirs_exist_ok=True)
            done.append(stage)
    return done


# -- CLI -------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    from .cli import add_dataclass_arguments

    add_dataclass_arguments(parser, RecipeConfig)


def run(args) -> int:
    from .cli import dataclass_from_args
    from .ablations import markdown_table

    results = run_recipe(dataclass_from_args(RecipeConfig, args))
    print(markdown_table(results))
    print(f"results: {Path(args.out) / 'results.json'}")
    return 0

