"""Run a small graph of jobs as separate processes, each once its inputs exist (the recipe's scheduler).

A job is a name (`stage:sft`, `eval:oracle`) run as `python -m MODULE OUT JOB`; the critical ones
(the stages every other job waits for) run alone, as DDP ranks on every core. Every job starts through this
module (`python -m r3lab.core.jobs NPROC MODULE OUT JOB`), which ties it, and each of its DDP ranks, to
its parent (`r3lab.core.procs`): Ctrl-C, SIGTERM or the scheduler's death leaves no job running.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .procs import PARENT_ENV, die_with_parent, exit_on_signals, parent_from_env, signal_of, stop

LAUNCHER = "r3lab.core.jobs"
POLL = 0.2  # seconds between looks at the running jobs (a stage of the smoke recipe lasts about one)
STOP_GRACE = 60.0  # seconds a job has to save and end once told to stop (torchrun gives its ranks 30), then SIGKILL


def job_command(module: str, out: str | os.PathLike, job: str, nproc: int = 1) -> list[str]:
    """The command that runs `job` of `module` (`nproc` > 1: as that many torchrun ranks), tied to this process."""
    return [sys.executable, "-m", LAUNCHER, str(nproc), module, str(out), job]


def run_jobs(
    jobs: dict[str, tuple[str, ...]],
    done: Callable[[str], bool],
    out: Path,
    module: str,
    parallel: int,
    order: list[str] = (),
    critical: tuple[str, ...] = (),
    progress: bool | None = None,
) -> None:
    """Run every job of `jobs` (name -> the jobs it waits for) not yet `done`, up to `parallel` processes at
    once (one thread each); jobs listed in `order` start first. Logs go to out/logs/jobs/<job>.log.

    Each job leads its own process group, so the terminal's Ctrl-C reaches it once, through this process: on
    Ctrl-C or a failed job the others get SIGINT (training saves), on SIGTERM / SIGHUP they get SIGTERM; each
    has STOP_GRACE seconds to end before it is killed."""
    from tqdm.auto import tqdm

    from .env import progress_disabled  # torch: not for the launcher below

    order = list(order)
    pending = sorted((j for j in jobs if not done(j)), key=lambda j: order.index(j) if j in order else len(order))
    logs = Path(out) / "logs" / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", PARENT_ENV: str(os.getpid())}
    running: dict[str, subprocess.Popen] = {}
    bar = tqdm(total=len(pending), desc="recipe jobs", disable=progress_disabled(progress))
    try:
        with exit_on_signals():
            while pending or running:
                for job in [j for j in pending if all(done(d) for d in jobs[j])]:
                    if len(running) >= parallel or any(j in critical for j in running):
                        break
                    if job in critical and running:
                        continue
                    pending.remove(job)
                    # the stages everything else waits for take every core
                    cmd = job_command(module, out, job, parallel if job in critical else 1)
                    with open(logs / f"{job.replace(':', '_')}.log", "w") as log:
                        running[job] = subprocess.Popen(
                            cmd,
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                            start_new_session=True,
                        )
                if not running:
                    raise RuntimeError(f"recipe jobs {pending} wait for inputs no job makes")
                time.sleep(POLL)
                for job, proc in list(running.items()):
                    if proc.poll() is None:
                        continue
                    del running[job]
                    bar.update(1)
                    if proc.returncode or not done(job):
                        log = logs / f"{job.replace(':', '_')}.log"
                        raise RuntimeError(
                            f"recipe job {job} failed (exit {proc.returncode}); its log is {log}:\n{_log_tail(log)}"
                        )
    except BaseException as e:  # Ctrl-C, SIGTERM / SIGHUP, a failed job: stop the others (they save on SIGINT)
        stop(running, signal_of(e), STOP_GRACE)
        raise
    finally:
        bar.close()


def _log_tail(log: Path, chars: int = 2000) -> str:
    """The log's end, led by the error a DDP rank raised (torchrun's own report of it fills the end)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    causes = [ln for ln in text.splitlines() if re.match(r"\[rank\d+\]: [\w.]*(Error|Exception|Interrupt)\b", ln)]
    tail = text[-chars:]
    return f"{causes[0]}\n...\n{tail}" if causes and causes[0] not in tail else tail


def launch(argv: list[str]) -> None:
    """`python -m r3lab.core.jobs NPROC MODULE ARGS...`: run MODULE as `__main__` with ARGS, first tied to
    the process that started this one (PARENT_ENV); NPROC > 1 runs it as that many torchrun ranks, each tied to
    this process in turn (torchrun runs here, so it is the ranks' parent)."""
    nproc, module, *args = argv
    # the scheduler stops a job with SIGINT (training saves); started from a background shell (`cmd &` in a script)
    # or by one that ignores SIGINT, a job inherits it ignored and Python never raises KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with_parent(parent=parent_from_env())
    if int(nproc) > 1:
        from torch.distributed.run import main as torchrun

        os.environ[PARENT_ENV] = str(os.getpid())  # the ranks' parent: torchrun's agent, in this process
        torchrun(["--standalone", f"--nproc_per_node={int(nproc)}", "-m", LAUNCHER, "1", module, *args])
        return
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    launch(sys.argv[1:])
