"""Each run's status file (status.json in its folder): pending, running, done or failed with its cause, and the
one-line error a failure is reported with.

Causes: `exit code N` (the command's own error, its `error: ...` line kept), `out of memory` (a CUDA / host
out-of-memory error in the log, or SIGKILL, the kernel's OOM killer's signal), `timeout` (--timeout), `signal NAME`
(something else ended it), `interrupted` (the sweep itself was stopped: a resume reruns it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.files import atomic_write_text

STATES = ("pending", "running", "done", "failed")
STATUS = "status.json"
LOG = "log.txt"
BACKEND_ENV = "R3LAB_SWEEP_BACKEND"  # set by the backend that starts a run
_OOM = re.compile(
    r"(CUDA out of memory|OutOfMemoryError|\bMemoryError\b|Cannot allocate memory|"
    r"DefaultCPUAllocator: can't allocate)"
)
_ERROR = re.compile(r"^(error: .+|[\w.]*(Error|Exception|Interrupt)\b.*)$")


@dataclass
class RunStatus:
    """What a run's status.json holds."""

    state: str = "pending"  # pending | running | done | failed
    cause: str = ""  # failed: exit code N | out of memory | timeout | signal NAME | interrupted
    error: str = ""  # failed: the one line that says why (the command's `error: ...`, an exception's last line)
    exit_code: int | None = None  # the failed step's exit status (negative: the signal that ended it)
    step: str = ""  # the step running or failed: train, eval, scores, recipe, notebook
    steps_done: list = field(default_factory=list)  # steps finished (a rerun starts after them)
    attempts: int = 0  # times the run was started
    started: float = 0.0  # unix time of the last start
    seconds: float = 0.0  # wall seconds of the last attempt (all its steps)
    host: str = ""  # where it ran (Ray: the node)
    backend: str = ""  # local or ray
    pid: int = 0  # the run's process while it runs

    @property
    def finished(self) -> bool:
        return self.state == "done"

    def line(self) -> str:
        """`failed (exit code 1 in train): error: ...` / `done in 12.3 s`."""
        if self.state == "failed":
            return f"failed ({self.cause}{' in ' + self.step if self.step else ''}): {self.error}"
        return f"{self.state}" + (f" in {self.seconds:.1f} s" if self.state == "done" else "")


def read_status(run_dir: str | os.PathLike) -> RunStatus:
    """A run's status; pending when it has none. A status file that is not one is a ValueError naming it."""
    path = Path(run_dir) / STATUS
    if not path.is_file():
        return RunStatus()
    try:
        values = json.loads(path.read_text())
        known = {f.name for f in fields(RunStatus)}
        st = RunStatus(**{k: v for k, v in values.items() if k in known})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path} is not a run's status ({e}); delete it to run that run again") from None
    if st.state not in STATES:
        raise ValueError(
            f"{path}: state {st.state!r} is not one of {', '.join(STATES)}; delete it to run that run again"
        )
    return st


def write_status(run_dir: str | os.PathLike, st: RunStatus) -> RunStatus:
    atomic_write_text(Path(run_dir) / STATUS, json.dumps(asdict(st), indent=1))
    return st


def start(run_dir: str | os.PathLike) -> RunStatus:
    """Mark a run running in this process (its attempt counted, steps already done kept)."""
    st = read_status(run_dir)
    return write_status(
        run_dir,
        RunStatus(
            "running",
            steps_done=st.steps_done if st.state != "done" else [],
            attempts=st.attempts + 1,
            started=time.time(),
            host=socket.gethostname(),
            pid=os.getpid(),
            backend=os.environ.get(BACKEND_ENV, "local"),
        ),
    )


def cause_of(returncode: int, log_text: str = "", timed_out: bool = False) -> tuple[str, str]:
    """(cause, one-line error) of a step that ended with `returncode` (negative: killed by that signal; 128 + N: a
    shell's or a launcher's report of signal N) and wrote `log_text`."""
    if timed_out:
        return "timeout", "no result within --timeout; the run was stopped"
    sig = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + 65 else 0
    line = error_line(log_text)
    if _OOM.search(log_text or ""):
        return "out of memory", line or "out of memory"
    if sig == getattr(signal, "SIGKILL", 9):
        return "out of memory", line or "killed by SIGKILL, as the kernel's out-of-memory killer does (see dmesg)"
    if sig and returncode < 0:
        return f"signal {_signame(sig)}", line or f"ended by {_signame(sig)}"
    return f"exit code {returncode}", line or f"exited with {returncode}"


def error_line(log_text: str) -> str:
    """The line that says why: the last `error: ...` the command printed, else the last exception line."""
    lines = [ln.strip() for ln in (log_text or "").splitlines() if ln.strip()]
    found = [ln for ln in lines if _ERROR.match(ln)]
    errors = [ln for ln in found if ln.startswith("error: ")]
    text = (errors or found or [""])[-1]
    return text.replace("  (--debug shows the traceback)", "")[:400]


def log_tail(run_dir: str | os.PathLike, chars: int = 20000) -> str:
    path = Path(run_dir) / LOG
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - chars))
        return f.read().decode("utf-8", errors="replace")


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
