"""The local backend: a pool of at most `workers` run processes (`r3lab.sweep.cell`, one OpenMP thread each).

Every run starts through the recipe's launcher, tied to this process (`r3lab.core.procs`): Ctrl-C, SIGTERM or this
process's death ends every run with it. Each run leads its own process group, so the terminal's Ctrl-C reaches it
once, through this process: the runs get SIGINT (training saves), on SIGTERM / SIGHUP they get SIGTERM, and each has
the recipe's grace to end before it is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from ..core.jobs import LAUNCHER, STOP_GRACE
from ..core.procs import PARENT_ENV, exit_on_signals, signal_of, stop
from .cell import finish_dead
from .status import LOG, RunStatus

POLL = 0.2  # seconds between looks at the running runs


def cell_command(run_dir: str | os.PathLike) -> list[str]:
    """The process one run is, tied to the process that starts it."""
    return [sys.executable, "-m", LAUNCHER, "1", "r3lab.sweep.cell", str(run_dir)]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_local(
    run_dirs: Sequence[Path],
    workers: int,
    on_end: Callable[[Path, RunStatus], None],
    on_start: Callable[[Path], None] = lambda d: None,
) -> None:
    """Run every folder of `run_dirs` (in order), `workers` at a time; `on_end(folder, status)` as each ends."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("R3LAB_SWEEP_THREADS", "1"), PARENT_ENV: str(os.getpid())}
    pending, running = list(run_dirs), {}
    with exit_on_signals():
        try:
            while pending or running:
                while pending and len(running) < workers:
                    d = pending.pop(0)
                    with open(Path(d) / LOG, "a") as log:  # the run's own crash (rare) lands in its log
                        running[str(d)] = subprocess.Popen(
                            cell_command(d),
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                            start_new_session=True,
                        )
                    on_start(Path(d))
                time.sleep(POLL)
                for key, proc in list(running.items()):
                    if proc.poll() is None:
                        continue
                    del running[key]
                    on_end(Path(key), finish_dead(key, proc.returncode))
        except BaseException as e:  # Ctrl-C, SIGTERM / SIGHUP: every run is told, waited for, then killed
            stop(running, signal_of(e), STOP_GRACE)
            for key, proc in running.items():
                finish_dead(key, proc.returncode if proc.returncode is not None else -9)
            raise
