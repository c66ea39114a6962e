"""`StageConfigs`: the config of every phase, stage and evaluation a recipe runs, built from its settings
(`RecipeConfig` holds them; built when the recipe is made, so that a bad setting fails before any training)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..evaluation.evaluation import EvalConfig
from ..train.config import RGRPOConfig, SFTConfig
from .curriculum import Phase
from .phase_data import SOURCES

ROWS = ("no_crop", "sft", "sft_rgrpo", "rgrpo_no_region", "oracle", "random")


class StageConfigs:
    """What each phase, stage and evaluated row of a `RecipeConfig` runs with (RecipeConfig's methods)."""

    def sft_config(self, name: str, steps: int, batch: int, lr: float, phase: str = "", horizon: int = 0) -> SFTConfig:
        """A phase's config; its log and checkpoints go to out/logs/<name>[_<phase>]. With `horizon` its schedule is
        laid over that many steps (it stops part-way along it)."""
        # two micro-batches of rows of similar length: less padding than one (benchmarks/train_step.py)
        return SFTConfig(
            steps=steps,
            batch_size=batch,
            grad_accum=2 if batch % 2 == 0 else 1,
            lr_lm=lr,
            lr_merger=lr,
            lr_vision=lr,
            autocast=self.autocast,
            schedule_steps=horizon,
            warmup=min(50, max(1, (horizon or steps) // 10)),
            seed=self.seed,
            log_every=10,
            save_every=250 if steps > 250 else 0,  # a killed stage loses minutes, not the stage
            out_dir=str(Path(self.out) / "logs" / (f"{name}_{phase}" if phase else name)),
            resume="auto",
            report_to=self.report_to,
        )

    def phase_config(self, stage: str, phase: Phase, k: int = -1) -> SFTConfig:
        """Phase `phase`'s config in stage `stage` (the stage's first logs to logs/<stage>), or with `k` >= 0 that
        of the phase its check adds after round k (logs/<stage>_<phase><k+1>): `more` steps, a fresh warm-up and
        cosine. Where its source reorders a fixed set (VLIR) its seed offsets move that order; what it leaves
        untrained (`Phase.frozen`) gets no gradient."""
        first = stage == "no_crop" or self._first(stage) is phase
        steps = phase.steps if k < 0 else phase.check.more
        suffix = "" if first and k < 0 else phase.name + (str(k + 1) if k >= 0 else "")
        cfg = self.sft_config(
            stage,
            steps,
            self._batch(stage),
            phase.lr,
            phase=suffix,
            horizon=steps if k < 0 and phase.early_steps() else 0,
        )
        if SOURCES[phase.mix.source].reorders:
            cfg = replace(cfg, seed=self.seed + (phase.seed if k < 0 else phase.check.more_seed + k))
        if frozen := phase.frozen_parts:
            cfg = replace(cfg, freeze_vision="vision" in frozen, freeze_merger="merger" in frozen)
        return cfg

    def _first(self, stage: str) -> Phase | None:
        phases = getattr(self, stage).phases if stage in ("base", "sft") else []
        return phases[0] if phases else None

    def _batch(self, stage: str) -> int:
        return self.sft.batch if stage == "no_crop" else getattr(self, stage).batch

    def rgrpo_config(self, name: str) -> RGRPOConfig:
        """The R-GRPO stage `name` ("rgrpo", or "rgrpo_no_region": the same without the region reward)."""
        r = self.rgrpo
        lr, frozen = r.lr, not r.vision
        reward = self.reward if name == "rgrpo" else replace(self.reward, region_weight=0.0)
        return RGRPOConfig(
            steps=r.steps,
            group_size=r.group_size,
            batch_size=r.batch,
            micro_rows=min(16, r.batch),
            lr_lm=lr,
            lr_merger=lr,
            lr_vision=lr,
            freeze_vision=frozen,
            freeze_merger=frozen,
            rollout=self.train_rollout,
            reward=reward,
            beta=r.beta,
            seed=self.seed,
            log_every=5,
            out_dir=str(Path(self.out) / "logs" / name),
            resume="auto",
            report_to=self.report_to,
        )

    def eval_config(self, row: str) -> EvalConfig:
        """Row `row`'s evaluation: greedy, the no_crop row without crops, every row reporting the recipe's reward."""
        rollout = replace(self.eval_rollout, max_crops=0) if row == "no_crop" else self.eval_rollout
        return EvalConfig(rollout=rollout, reward=self.reward, batch_rows=64)

    def stage_configs(self) -> dict:
        """Every config the recipe's phases, stages and evaluations run with, by job name (a phase: STAGE:PHASE)."""
        out = {f"{s}:{p.name}": self.phase_config(s, p) for s, p in self.stage_phases()}
        out["no_crop:no_crop"] = self.phase_config("no_crop", self.no_crop_phase())
        out.update({f"stage:{name}": self.rgrpo_config(name) for name in ("rgrpo", "rgrpo_no_region")})
        out.update({f"eval:{row}": self.eval_config(row) for row in ROWS})
        return out
