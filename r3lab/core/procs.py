"""Child processes that end with their parent: the recipe's jobs and their DDP ranks never outlive it.

Three guards, because no single one covers every way a parent ends: a parent that is told to stop (Ctrl-C,
SIGTERM, SIGHUP, a failed job) stops its children itself (`exit_on_signals`, then `stop`, which waits a bounded
time and then kills); a parent killed outright (SIGKILL, a crash) cannot, so each child asks the kernel to signal
it when its parent ends (`die_with_parent`, Linux's PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from typing import Iterator, Sequence

PARENT_ENV = "R3LAB_PARENT_PID"  # set by whoever starts a child: the pid it must end with
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# the signals that end a process politely (Windows has neither SIGHUP nor SIGKILL)
STOPS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Have the kernel send `sig` to this process when its parent ends (Linux; elsewhere nothing, and False).

    `parent`: the pid that started this process. If the parent has already gone (it ended between starting this
    process and this call, before the kernel was asked), the process ends at once, as the signal would end it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):  # no libc prctl (a static or unusual build): the parent's own stop remains
        return False
    if parent is not None and os.getppid() != parent:
        os._exit(128 + int(sig))
    return True


def parent_from_env() -> int | None:
    """The pid in PARENT_ENV, when a launcher set one."""
    value = os.environ.get(PARENT_ENV, "").strip()
    return int(value) if value.isdigit() else None


@contextlib.contextmanager
def exit_on_signals(signals: Sequence[int] = STOPS) -> Iterator[None]:
    """Inside the block `signals` raise SystemExit(128 + signal) instead of ending the process on the spot, so
    `except` / `finally` clauses (stopping children) run; Ctrl-C already raises KeyboardInterrupt. Main thread only
    (elsewhere Python cannot set handlers, and nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum, frame):
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, raise_exit) for s in signals}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def signal_of(exc: BaseException | None) -> int:
    """The signal to pass on to children when their parent leaves with `exc`: SIGTERM for a SIGTERM / SIGHUP the
    parent received (`exit_on_signals`), else SIGINT (Ctrl-C, a failed sibling: training saves on SIGINT)."""
    if isinstance(exc, SystemExit) and isinstance(exc.code, int) and exc.code - 128 in STOPS:
        return signal.SIGTERM
    return signal.SIGINT


def stop(
    procs: dict[str, subprocess.Popen], sig: int = signal.SIGINT, grace: float = 60.0, kill_wait: float = 10.0
) -> list[str]:
    """Send `sig` to every live process of `procs` (name -> process; to its whole process group when it leads
    one), wait at most `grace` seconds for them all, then SIGKILL the rest and wait `kill_wait` more. Returns the
    names of those still alive after that (a process stuck in the kernel), which a warning names too."""
    for proc in procs.values():
        _signal(proc, sig)
    deadline = time.monotonic() + grace
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    left = {name: proc for name, proc in procs.items() if proc.poll() is None}
    for proc in left.values():
        _signal(proc, _KILL)
    deadline = time.monotonic() + kill_wait
    for proc in left.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [name for name, proc in left.items() if proc.poll() is None]
    if stuck:
        warnings.warn(
            f"{', '.join(f'{n} (pid {procs[n].pid})' for n in stuck)} did not end {kill_wait:g} s after "
            "SIGKILL (stuck in the kernel?); end them by hand once they can be",
            stacklevel=2,
        )
    return stuck


def _signal(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg") and os.getpgid(proc.pid) == proc.pid:  # it leads its own group: all of it
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
