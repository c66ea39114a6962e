"""The training loop both stages share: state, progress, callbacks, checkpoints and a safe Ctrl-C.

`run_loop(state, step_fn, total)` calls `step_fn` until `state.step == total`, logs each step's row
(`out_dir/log.jsonl` is rewritten with every logged row, so a headless run can be watched while it trains),
calls the callbacks, checkpoints every `save_every` steps and at the end; Ctrl-C never splits an
update (`defer_interrupt`), saves, and returns the partial log. A NaN / inf loss or gradient norm
stops the run before anything is saved.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.files import FolderLock
from ..core.settings import MAX_ROWS, short  # MAX_ROWS: trajectories a process holds in one step (built at once)
from ..engine.scoring import TokenScorer
from ..model.adapters import add_lora, is_adapted
from ..model.policy import Policy, read_json, save_base
from . import dist
from .checkpoint import (
    BASE,
    check_state,
    clean_partial,
    find_checkpoint,
    has_run,
    last_good,
    load_checkpoint,
    nonfinite_parameters,
    remove_run,
    save_checkpoint,
)
from .config import TrainConfig
from .metrics import MetricLog
from .optim import make_optimizer
from .trackers import Trackers, parse_report_to


@dataclass
class TrainState:
    """Everything a training loop carries between steps."""

    policy: Policy
    config: TrainConfig  # SFTConfig or RGRPOConfig
    optimizer: torch.optim.Optimizer
    scorer: torch.nn.Module  # TokenScorer, DDP-wrapped when distributed
    step: int = 0  # completed optimizer steps (R-GRPO: completed rollout steps)
    log: MetricLog = field(default_factory=MetricLog)
    started: float = field(default_factory=time.perf_counter)  # wall clock origin of this run
    interrupted: bool = False  # set when Ctrl-C ended the run
    resumed: bool = False  # continued from a checkpoint in out_dir
    row: dict | None = None  # the metrics of the step just completed, set together with `step` (see run_loop)
    lock: FolderLock | None = None  # out_dir's lock, held from maybe_resume to the end of run_loop


def prepare(policy: Policy, config: TrainConfig, state: type[TrainState] = TrainState) -> TrainState:
    """Optimizer, scorer (DDP when distributed), gradient checkpointing, train mode; a `state` (or subclass)."""
    dist.init()
    model = policy.model
    if bad := nonfinite_parameters(model):  # a diverged start would only show as a NaN loss at step 1
        raise ValueError(
            f"{policy.meta.get('path') or 'the policy'}: parameters {bad[:3]} hold NaN/inf before "
            "training starts; start from another checkpoint (--policy) or a fresh model"
        )
    if config.lora.enabled and not is_adapted(model):  # a resumed or continued adapter keeps its own
        if policy.meta.get("path") and not policy.meta.get("base"):
            policy.meta["base"] = str(Path(policy.meta["path"]).resolve())  # the folder the frozen weights came from
        model = add_lora(policy, config.lora).model
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    model.train()
    opt = make_optimizer(model, config)
    scorer = dist.wrap_ddp(TokenScorer(model))
    st = state(policy, config, opt, scorer)
    st.log.settings = asdict(config)  # what the log is of (the exercises' checks read it)
    return st


def save(state: TrainState, keep: int | None = 3):
    """Rank 0 writes a checkpoint of the state into config.out_dir (no-op without one)."""
    out = state.config.out_dir
    if not out:
        return None
    path = None
    if dist.info().is_main:
        policy = state.policy
        if is_adapted(policy.model) and not policy.meta.get("base"):  # a base made in memory: written once per run
            save_base(policy, Path(out) / BASE)
            policy.meta["base"] = str((Path(out) / BASE).resolve())
        extra = {"config": asdict(state.config), "log": state.log.rows, "kind": type(state.config).__name__}
        path = save_checkpoint(out, state.policy, state.optimizer, state.step, extra, keep=keep)
        state.log.save_jsonl(f"{out}/log.jsonl")
    dist.barrier()
    return path


def maybe_resume(state: TrainState) -> bool:
    """Make config.out_dir ready for this run and resume from it when asked; returns whether it resumed.

    resume=False: the folder must not hold a run (log.jsonl, latest, step_*) unless overwrite=True,
    which deletes that run's files first. resume=True: it must hold a checkpoint. resume="auto":
    continue when it holds one, else start afresh (the recipe reruns a stage until it is done), replacing
    the live log of a run killed before its first checkpoint.
    Temporary folders of a save that was killed are removed in every case.
    """
    cfg = state.config
    out = cfg.out_dir
    if not out:
        return False
    if dist.info().is_main:  # one run per folder: a second process is refused before it looks (see run_loop)
        state.lock = FolderLock(out, "training run")
    try:
        return _resume(state)
    except BaseException:
        if state.lock is not None:
            state.lock.release()
        raise


def _resume(state: TrainState) -> bool:
    cfg = state.config
    out, resume = cfg.out_dir, cfg.resume
    try:
        find_checkpoint(out)
        found, why = True, ""
    except FileNotFoundError as e:
        found, why = False, str(e)
    if resume is True and not found:
        raise FileNotFoundError(
            f"resume=True, but there is nothing to resume in {out} ({why}); start a new run "
            "with resume=False, or use resume='auto' to continue only when a checkpoint exists"
        )
    go = found and bool(resume)
    log_only = resume == "auto" and not found and not any(Path(out).glob("step_*"))  # killed before a checkpoint
    if not go and has_run(out) and not cfg.overwrite and not log_only:
        raise FileExistsError(
            f"{out} already holds a training run (log.jsonl / latest / step_* folders): continue "
            "it with resume=True (--resume true), replace it with overwrite=True (--overwrite "
            "true), or choose another out_dir"
        )
    if cfg.overwrite and _in_run(start := state.policy.meta.get("path"), out):
        raise ValueError(
            f"the start policy {start} lies in out_dir {out}, whose run overwrite=True (--overwrite "
            "true) deletes: the run would delete its own starting checkpoint. Choose another out_dir, "
            "or continue the run with resume=True (--resume true)"
        )
    dist.barrier()  # every process has looked before rank 0 changes the folder
    if dist.info().is_main:
        remove_run(out) if cfg.overwrite or (log_only and has_run(out)) else clean_partial(out)
    dist.barrier()
    if not go:
        return False
    ckpt = find_checkpoint(out)
    saved = read_json(ckpt / "state.json")
    check_state(saved, ckpt / "state.json")
    if saved["step"] > cfg.steps:  # else the loop would do nothing and report success
        raise ValueError(
            f"{ckpt / 'state.json'}: the run is at step {saved['step']}, beyond the {cfg.steps} steps "
            "asked for (--steps): ask for more steps to continue it, "
            "or load it as the start policy (--policy)"
        )
    check_same_settings(cfg, saved, ckpt)
    meta = load_checkpoint(out, state.policy, state.optimizer)
    dist.barrier()  # every rank has read the checkpoint before rank 0 writes the next one into the folder
    state.step = int(meta["step"])
    state.log = MetricLog(meta.get("log", []), settings=asdict(cfg), resumed_at=state.step)
    state.resumed = True
    if dist.info().is_main:  # the live log may hold rows logged after that checkpoint: they are redone
        state.log.save_jsonl(f"{out}/log.jsonl")
    return True


def _in_run(start: str | None, out) -> bool:
    """Whether the folder a policy was loaded from is among the run files `remove_run` deletes from `out`."""
    if not start:
        return False
    start, out = Path(start).resolve(), Path(out).resolve()
    if start == out:
        return True
    try:
        top = start.relative_to(out).parts[0]
    except ValueError:
        return False
    return top.startswith("step_") or top in ("reference", BASE)


# settings a resumed run may change: its length, where its files go, how often it logs and saves, and
# memory-only choices that leave the result as it was; every other setting must match the saved run
MAY_CHANGE = (
    "steps",
    "data",
    "out_dir",
    "resume",
    "overwrite",
    "log_every",
    "save_every",
    "report_to",
    "gradient_checkpointing",
    "micro_rows",
)


def check_same_settings(cfg: TrainConfig, saved: dict, ckpt) -> None:
    """ValueError naming every setting in which `cfg` differs from the run saved in `ckpt` (its state.json)."""
    kind = type(cfg).__name__
    if saved.get("kind", kind) != kind:
        raise ValueError(
            f"{ckpt} is a checkpoint of a {saved.get('kind')} run, not of a {kind} one: give this "
            "stage its own out_dir, or load that checkpoint as the start policy (--policy)"
        )
    old, new = saved.get("config") or {}, asdict(cfg)
    diff = [
        f"{k}: saved {short(old[k])}, now {short(v)}"
        for k, v in new.items()
        if k in old and k not in MAY_CHANGE and old[k] != v
    ]  # a setting the old run did not record is not compared
    if diff:
        raise ValueError(
            f"resume: these settings differ from the run saved in {ckpt}: "
            + "; ".join(diff)
            + ". Resume with the saved values, or start a new run (overwrite=True / --overwrite true, or "
            "another out_dir)"
        )


_DEFERRING: list = []


@contextlib.contextmanager
def defer_interrupt():
    """Hold Ctrl-C until the block ends, so an update is never half-applied (main thread; re-entrant)."""
    if _DEFERRING:
        yield
        return
    try:
        old = signal.getsignal(signal.SIGINT)
        hit = []
        signal.signal(signal.SIGINT, lambda *a: hit.append(a))
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    _DEFERRING.append(True)
    try:
        yield
    finally:
        _DEFERRING.pop()
        signal.signal(signal.SIGINT, old)
        if hit:
            raise KeyboardInterrupt


def run_loop(
    state: TrainState,
    step_fn: Callable[[TrainState], dict],
    total: int,
    callbacks: Sequence[Callable] = (),
    desc: str = "train",
) -> MetricLog:
    """`_run_loop` (with the trackers `report_to` names, on the main process), then out_dir's lock is given up and
    the trackers closed however the run ended."""
    trackers = Trackers(state.config) if dist.info().is_main and parse_report_to(state.config.report_to) else None
    try:
        return _run_loop(state, step_fn, total, [*callbacks, *([trackers] if trackers else [])], desc)
    finally:
        if trackers is not None:
            trackers.close()
        if state.lock is not None:
            state.lock.release()


def _run_loop(
    state: TrainState,
    step_fn: Callable[[TrainState], dict],
    total: int,
    callbacks: Sequence[Callable] = (),
    desc: str = "train",
) -> MetricLog:
    """Call `step_fn` until `state.step == total`; log, call back, checkpoint; Ctrl-C saves and returns.

    `step_fn` applies one step, increments `state.step` and sets `state.row` inside `defer_interrupt()`,
    so the state a Ctrl-C saves is always that of a whole number of steps, with every step's log row.
    A NaN / inf loss or gradient norm stops the run (FloatingPointError) before anything is saved.
    """
    cfg = state.config
    main = dist.info().is_main
    bar = tqdm(total=total, initial=state.step, desc=desc, disable=progress_disabled() or not main)
    finished = state.resumed and state.step == total  # a finished run resumed: its last checkpoint is already saved

    def record(row: dict) -> dict:
        state.row = None
        if state.step % max(1, cfg.log_every) == 0 or state.step == total:
            row = state.log.log(state.step, **row)
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("loss", "reward") if isinstance(row.get(k), float)})
            if main and cfg.out_dir:  # live: a headless run (no progress bar) shows its rows as they come
                state.log.save_jsonl(f"{cfg.out_dir}/log.jsonl")
        return row

    try:
        while state.step < total:
            state.row = None
            raw = step_fn(state)
            row = record(raw)
            check_finite_step(state, raw)  # the raw row: the log stores NaN as null
            for cb in callbacks:
                cb(state, row)
            bar.update(1)
            if cfg.save_every and state.step % cfg.save_every == 0 and state.step < total:
                save(state)
    except KeyboardInterrupt:
        if state.row is not None:  # Ctrl-C came during the update: the step is done, so keep its row too
            record(state.row)
        state.interrupted = state.log.interrupted = True
        path = save(state)
        warnings.warn(
            f"interrupted after step {state.step}; "
            + (f"checkpoint saved to {path}" if path else "set out_dir to keep a checkpoint")
            + "; returning the partial log",
            stacklevel=2,
        )
        return state.log
    finally:
        bar.close()
    if not finished:  # saving it again would rewrite the folder other ranks may still be reading
        save(state)
    return state.log


def check_finite_step(state: TrainState, row: dict) -> None:
    """Stop at the first step whose loss or gradient norm is NaN / inf, before anything is saved."""
    bad = {
        k: float(row[k])
        for k in ("loss", "grad_norm")
        if isinstance(row.get(k), (float, torch.Tensor)) and not math.isfinite(float(row[k]))
    }
    if not bad:
        return
    out = state.config.out_dir
    keep = last_good(out) if out else "out_dir is unset, nothing was saved"
    raise FloatingPointError(
        f"step {state.step}: {bad} is not finite, so training stopped without saving; {keep}. "
        "Lower the learning rates, set grad_clip or check the data"
    )


def check_batch(samples_per_step: int, n_samples: int, rows_per_step: int, what: str) -> None:
    """Refuse, before any work, a step that needs more distinct samples than the data has, or more
    trajectories in one process's memory than MAX_ROWS (an absurd --batch-size grows memory without bound)."""
    flag = "batch_size (--batch-size)"
    if samples_per_step > n_samples:
        raise ValueError(
            f"{flag} asks for {samples_per_step} {what} per step, but the data has only {n_samples} "
            f"samples: each step would hold every sample {samples_per_step / n_samples:.3g} times over. "
            f"Lower {flag} so that a step needs at most {n_samples}, or give more data"
        )
    rows = math.ceil(rows_per_step / dist.info().world_size)
    if rows > MAX_ROWS:
        raise ValueError(
            f"{flag} asks for {rows} trajectories per step in one process, more than the {MAX_ROWS} r3lab "
            "holds in memory at once: lower it, or spread the batch over more processes (torchrun)"
        )


def batch_order(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Indices of the global batch at `step`: epoch-wise seeded shuffles, a pure function of the step."""
    out = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, pos = divmod(k, n)
        out.append(_permutation(n, seed, epoch)[pos])
    return out


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    perm = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(perm)
    return tuple(perm)
