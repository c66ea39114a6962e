"""One run of a sweep, as its own process: `python -m r3lab.sweep.cell RUN_DIR` runs the steps RUN_DIR/run.json lists
(the command's own CLI, then, for training, `r3lab eval` of its checkpoint and the per-question scores), each as a
child tied to this process (`r3lab.core.procs`), logs into RUN_DIR/log.txt and keeps RUN_DIR/status.json.

The local pool and the Ray backend both start runs through this module, so a run behaves the same wherever it
runs: a step that fails ends the run with its cause; SIGINT / SIGTERM reach the running step (training saves) and
the run is marked interrupted; a rerun starts after the steps already done.
Exit status: 0 done, 1 failed, 128 + N stopped by signal N.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..core.jobs import LAUNCHER, STOP_GRACE  # a child tied to its parent: the recipe's launcher
from ..core.procs import PARENT_ENV, exit_on_signals, signal_of, stop
from .status import LOG, RunStatus, cause_of, log_tail, read_status, start, write_status

RUN_FILE = "run.json"
POLL = 0.1  # seconds between looks at the running step


def step_command(step: dict) -> list[str]:
    """The process a step runs: its module (`r3lab.cli` for a command) with its arguments, tied to this process."""
    return [sys.executable, "-m", LAUNCHER, "1", step["module"], *map(str, step["args"])]


def run_cell(run_dir: str | os.PathLike) -> int:
    """Run the steps of `run_dir` not yet done; returns the exit status (0 done, 1 failed)."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / RUN_FILE).read_text())
    st = start(run_dir)
    t0 = time.monotonic()
    deadline = t0 + spec["timeout"] if spec.get("timeout") else None
    env = {
        **os.environ,
        **spec.get("env", {}),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "TQDM_DISABLE": "1",
        "PYTHONUNBUFFERED": "1",
        PARENT_ENV: str(os.getpid()),
    }
    running: dict[str, subprocess.Popen] = {}
    with open(run_dir / LOG, "a") as log, exit_on_signals():
        log.write(f"=== attempt {st.attempts}, {time.strftime('%Y-%m-%d %H:%M:%S')} on {st.host} ===\n")
        try:
            for step in spec["steps"]:
                if step["name"] in st.steps_done:
                    log.write(f"--- {step['name']}: done in an earlier attempt\n")
                    continue
                st.step = step["name"]
                write_status(run_dir, st)
                log.write(f"--- {step['name']}: {' '.join(step_command(step)[3:])}\n")
                log.flush()
                proc = subprocess.Popen(
                    step_command(step),
                    cwd=spec.get("cwd") or None,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                running[step["name"]] = proc
                timed_out = _wait(proc, deadline)
                if timed_out:
                    stop(running, signal_of(None), STOP_GRACE)
                del running[step["name"]]
                if timed_out or proc.returncode:
                    log.flush()
                    st.cause, st.error = cause_of(proc.returncode, log_tail(run_dir), timed_out)
                    return _end(run_dir, st, "failed", t0, proc.returncode)
                st.steps_done = [*st.steps_done, step["name"]]
            st.step = ""
            return _end(run_dir, st, "done", t0, 0)
        except BaseException as e:  # Ctrl-C, SIGTERM / SIGHUP (exit_on_signals): the step saves and ends with us
            stop(running, signal_of(e), STOP_GRACE)
            st.cause, st.error = "interrupted", f"the sweep was stopped ({type(e).__name__}); a resume runs it again"
            _end(run_dir, st, "failed", t0, None)
            raise


def _wait(proc: subprocess.Popen, deadline: float | None) -> bool:
    """Wait for `proc`; True when the deadline passed first."""
    while proc.poll() is None:
        if deadline is not None and time.monotonic() > deadline:
            return True
        time.sleep(POLL)
    return False


def _end(run_dir: Path, st: RunStatus, state: str, t0: float, code: int | None) -> int:
    st.state, st.exit_code, st.seconds, st.pid = state, code, round(time.monotonic() - t0, 2), 0
    write_status(run_dir, st)
    return 0 if state == "done" else 1


def finish_dead(run_dir: str | os.PathLike, returncode: int) -> RunStatus:
    """The status of a run whose own process ended without writing its end (killed outright): failed, its cause
    from the exit status."""
    st = read_status(run_dir)
    if st.state in ("done", "failed"):
        return st
    st.state, st.exit_code, st.pid = "failed", returncode, 0
    st.cause, st.error = cause_of(returncode, log_tail(run_dir))
    st.seconds = round(time.time() - st.started, 2) if st.started else 0.0
    return write_status(run_dir, st)


if __name__ == "__main__":
    sys.exit(run_cell(sys.argv[1]))
