"""The checks of lessons 20 and 30's exercises (SFT and R-GRPO): each holds the student's runs to what a right
answer must show, computed from their own objects."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.settings import short
from .checks import checker, need


def _mean(log, key: str) -> float:
    vals = [r[key] for r in log.rows if r.get(key) is not None]
    need(bool(vals), f"the log has no {short(key)}: pass the MetricLog that train_rgrpo / train_sft returned")
    return sum(vals) / len(vals)


@checker("30.1")
def zero_std_groups(rewards_g2, rewards_g8, share_g2, share_g8) -> str:
    """The shares of zero-std groups, recomputed from the rewards (in group order)."""
    from ..train.rgrpo import group_advantages

    for g, rewards, share in ((2, rewards_g2, share_g2), (8, rewards_g8, share_g8)):
        rewards = [float(r) for r in rewards]
        need(
            len(rewards) >= g and len(rewards) % g == 0,
            f"the G={g} rewards hold {len(rewards)} values: pass whole groups of {g}, each group's answers together",
        )
        truth = float(group_advantages(rewards, g)[1].float().mean())
        need(
            abs(float(share) - truth) < 1e-6,
            f"G={g}: {float(share):.3f} is not the share of zero-std groups in these "
            f"rewards; a group has zero std when all its rewards are equal (here: {truth:.3f})",
        )
    more = "G=2" if share_g2 > share_g8 else "G=8" if share_g8 > share_g2 else "neither"
    return f"zero-std groups: G=2 {share_g2:.0%}, G=8 {share_g8:.0%} ({more} ties more often)"


@checker("30.2")
def several_updates(clip_log, log) -> str:
    """One update per batch never clips; several do, and their ratio leaves 1."""
    need(
        _mean(log, "clip_frac") == 0,
        "the main run (inner_epochs=1) should clip nothing; pass its log as the second argument",
    )
    ratios = [r["ratio_mean"] for r in clip_log.rows if r.get("frac_zero_std", 0) < 1]
    need(
        any(abs(x - 1) > 1e-6 for x in ratios),
        "every ratio of your clip run is 1: it made one update per batch; set clip_epochs (inner_epochs) to 2 or more",
    )
    need(
        _mean(clip_log, "clip_frac") > 0,
        "your clip run clipped nothing: its later updates did not move the ratio "
        "past 1 ± eps; keep clip_lr large (2e-4)",
    )
    return (
        f"clip_frac {_mean(log, 'clip_frac'):.3f} with one update per batch, {_mean(clip_log, 'clip_frac'):.3f} "
        "with several: only later updates of a batch see a moved policy"
    )


@checker("30.3")
def presets_prefer(group, labels, code: str, paper: str, region_weight: float = 1.0) -> str:
    """The answer each preset scores highest, from the scores of the scripted group."""
    from ..train.rewards import preset, score

    need(len(labels) == len(group), f"{len(labels)} labels for {len(group)} answers: pass the lesson's `labels`")
    said = {"code": code, "paper": paper}
    for name, guess in said.items():
        totals = score(group, preset(name, region_weight=region_weight)).total
        best = labels[max(range(len(totals)), key=lambda i: totals[i])]
        need(guess in labels, f"{short(guess)} is not one of the labels {labels}")
        need(guess == best, f"`{name}` does not score {short(guess)} highest; look at its total column again")
    return f"code prefers {short(code)}, paper prefers {short(paper)}"


@checker("30.4")
def kl_to_the_start(kl_state, kl_log) -> str:
    """A frozen reference exists with beta > 0, and the KL grows from 0 as the policy moves."""
    need(
        getattr(kl_state, "ref", None) is not None,
        "no reference model in the state: set beta=0.05 in the RGRPOConfig you pass to setup_rgrpo",
    )
    kls = [r["kl"] for r in kl_log.rows if r.get("kl") is not None]
    need(len(kls) >= 2, "train at least two steps so the KL can move")
    need(abs(kls[0]) < 1e-3, f"the first step's kl is {kls[0]:.4f}: the policy should equal its reference then")
    need(max(kls[1:]) > kls[0], f"kl never rose above the first step's ({kls}): did the policy train (lr_lm > 0)?")
    return f"kl {kls[0]:.5f} at the first step, {kls[-1]:.5f} at the last"


@checker("30.5")
def two_processes(out_dir, steps: int = 4) -> str:
    """The two-process run left its checkpoint and one log row per step."""
    from ..train.checkpoint import find_checkpoint

    out = Path(out_dir)
    need(out.is_dir(), f"{out} does not exist: run the torchrun command with --out-dir {out}")
    try:
        ckpt = find_checkpoint(out)
    except (FileNotFoundError, ValueError) as e:
        need(False, f"no checkpoint in {out}: {e}")
    need(ckpt.name == f"step_{steps:06d}", f"the last checkpoint is {ckpt.name}, not step {steps}: did the run finish?")
    log = out / "log.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
    need(len(rows) == steps, f"{log} has {len(rows)} rows, not {steps}")
    return f"{steps} steps logged and checkpointed in {ckpt}"


@checker("20.1")
def frozen_vision(frozen_policy, base_policy) -> str:
    """The frozen run moved the language model only: the vision tower and the merger equal the base's."""
    import torch

    from ..train.optim import group_of

    base = dict(base_policy.model.named_parameters())
    moved = {"vision": 0, "merger": 0, "lm": 0}
    for name, p in frozen_policy.model.named_parameters():
        need(name in base, f"{name} is not in the base policy: pass an untouched copy of the same base")
        moved[group_of(name)] += int(not torch.equal(p.detach().cpu(), base[name].detach().cpu()))
    need(moved["lm"] > 0, "the language model did not move: did the frozen run train (steps > 0)?")
    need(
        moved["vision"] == 0 and moved["merger"] == 0,
        f"{moved['vision']} vision and {moved['merger']} merger tensors "
        "moved: set freeze_vision=True and freeze_merger=True in the SFTConfig",
    )
    return f"{moved['lm']} language-model tensors moved, the vision tower and the merger did not"


def _losses(log) -> list[float]:
    rows = getattr(log, "rows", log)
    return [float(r["loss"]) for r in rows]


def _run(log, what: str) -> dict:
    """The settings of the run a log is of (a MetricLog that train_sft returned)."""
    need(
        isinstance(getattr(log, "settings", None), dict),
        f"pass {what}: the MetricLog train_sft returned (a list of rows does not say which run it is of)",
    )
    return log.settings


@checker("20.2")
def gradient_accumulation(log_accum_1, log_accum_2) -> str:
    """The same batches averaged in one pass or in two micro-batches give the same losses."""
    one, two = _run(log_accum_1, "the grad_accum=1 run's log"), _run(log_accum_2, "the grad_accum=2 run's log")
    need(
        log_accum_1 is not log_accum_2 and one.get("grad_accum") != two.get("grad_accum"),
        f"both logs are of runs with grad_accum = {one.get('grad_accum')}: train once with grad_accum=1 and once "
        "with grad_accum=2, and pass both logs",
    )
    other = sorted(k for k in set(one) | set(two) if k not in ("grad_accum", "out_dir") and one.get(k) != two.get(k))
    need(not other, f"the two runs differ in {', '.join(other)} too: change only grad_accum")
    a, b = _losses(log_accum_1), _losses(log_accum_2)
    need(len(a) >= 2 and len(a) == len(b), f"the logs have {len(a)} and {len(b)} steps: train the same number (>= 2)")
    gap = max(abs(x - y) for x, y in zip(a, b))
    need(
        gap < 1e-3,
        f"the losses differ by up to {gap:.2e}: keep the seed, batch size and data the same and change only grad_accum",
    )
    need(any(abs(x - y) > 0 for x, y in zip(a, a[1:])), "the loss never changed: did training run?")
    return f"{len(a)} steps, largest loss difference {gap:.1e}: accumulation changes memory, not the result"


@checker("20.3")
def resumed(whole_log, resumed_log) -> str:
    """A run interrupted and resumed repeats the uninterrupted run's steps and losses."""
    _run(whole_log, "the uninterrupted run's log first")
    _run(resumed_log, "the resumed run's log second")
    need(whole_log.resumed_at is None, "the first log is of a run that resumed: pass the uninterrupted run's log first")
    need(
        resumed_log.resumed_at is not None,
        "the second log is of a run that did not resume: train half the steps "
        "into a folder, then train again into it with resume=True, and pass that log",
    )
    steps = [r["step"] for r in resumed_log.rows]
    whole = [r["step"] for r in whole_log.rows]
    need(
        steps == whole,
        f"the resumed log's steps {steps} differ from the uninterrupted run's {whole}: resume with "
        "the same steps into the folder of the interrupted run (resume=True)",
    )
    gap = max(abs(x - y) for x, y in zip(_losses(whole_log), _losses(resumed_log)))
    need(gap < 1e-5, f"the losses differ by {gap:.2e}: same seed, data and settings for both runs")
    return (
        f"steps {steps[0]}..{steps[-1]} repeated (resumed at step {resumed_log.resumed_at}), largest loss "
        f"difference {gap:.1e}"
    )


@checker("20.4")
def control_only(before_eval, after_eval, crops_less: bool) -> str:
    """After SFT on control questions only, does the model crop less on read_one? Read from the two evaluations."""
    b, a = before_eval["all"]["crop_rate"], after_eval["all"]["crop_rate"]
    truth = a < b - 0.05
    need(bool(crops_less) == truth, f"your evaluations say the read_one crop rate went {b:.0%} -> {a:.0%}: look again")
    return f"read_one crop rate {b:.0%} -> {a:.0%}: " + ("it crops less" if truth else "it crops as often")
