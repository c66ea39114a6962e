"""Run a small graph of jobs as separate processes, each once its inputs exist (the recipe's scheduler).

A job is a name (`stage:sft`, `eval:oracle`) run as `python -m MODULE OUT JOB`; the critical ones
(the stages every other job waits for) run alone, as DDP ranks on every core.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from ..core.env import progress_disabled


def run_jobs(jobs: dict[str, tuple[str, ...]], done: Callable[[str], bool], out: Path, module: str, parallel: int,
             order: list[str] = (), critical: tuple[str, ...] = (), progress: bool | None = None) -> None:
    """Run every job of `jobs` (name -> the jobs it waits for) not yet `done`, up to `parallel` processes at
    once (one thread each); jobs listed in `order` start first. Logs go to out/logs/jobs/<job>.log."""
    order = list(order)
    pending = sorted((j for j in jobs if not done(j)), key=lambda j: order.index(j) if j in order else len(order))
    logs = Path(out) / "logs" / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    running: dict[str, subprocess.Popen] = {}
    bar = tqdm(total=len(pending), desc="recipe jobs", disable=progress_disabled(progress))
    try:
        while pending or running:
            for job in [j for j in pending if all(done(d) for d in jobs[j])]:
                if len(running) >= parallel or any(j in critical for j in running):
                    break
                if job in critical and running:
                    continue
                pending.remove(job)
                cmd = [sys.executable, "-m", module, str(out), job]
                if job in critical and parallel > 1:  # the stages everything else waits for take every core
                    cmd[1:3] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={parallel}",
                                "-m", module]
                with open(logs / f"{job.replace(':', '_')}.log", "w") as log:
                    running[job] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            if not running:
                raise RuntimeError(f"recipe jobs {pending} wait for inputs no job makes")
            time.sleep(1.0)
            for job, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[job]
                bar.update(1)
                if proc.returncode or not done(job):
                    log = logs / f"{job.replace(':', '_')}.log"
                    raise RuntimeError(f"recipe job {job} failed (exit {proc.returncode}); its log is {log}:\n"
                                       f"{_log_tail(log)}")
    except BaseException:
        for proc in running.values():  # Ctrl-C / a failed job: stop the others; they save on SIGINT
            proc.send_signal(2)
        for proc in running.values():
            proc.wait()
        raise
    finally:
        bar.close()


def _log_tail(log: Path, chars: int = 2000) -> str:
    """The log's end, led by the error a DDP rank raised (torchrun's own report of it fills the end)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    causes = [ln for ln in text.splitlines() if re.match(r"\[rank\d+\]: [\w.]*(Error|Exception|Interrupt)\b", ln)]
    tail = text[-chars:]
    return f"{causes[0]}\n...\n{tail}" if causes and causes[0] not in tail else tail
