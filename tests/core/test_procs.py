"""Children that end with their parent: the guards one by one (the whole job tree: tests/core/test_jobs.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from r3lab.core.procs import exit_on_signals, signal_of, stop

from .. import HANG_S

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


@LINUX
def test_a_child_whose_parent_is_already_gone_ends_at_once():
    # the parent died between starting the child and the child's request to the kernel: nothing would signal it
    code = "from r3lab.core.procs import die_with_parent; die_with_parent(parent=1); print('still here')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert run.returncode == 128 + signal.SIGTERM and "still here" not in run.stdout
    code = f"from r3lab.core.procs import die_with_parent; print(die_with_parent(parent={os.getpid()}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert run.stdout == "True\n"


@LINUX
def test_a_child_ends_when_its_parent_is_killed(tmp_path):
    # the parent starts a sleeper that asked to die with it, passes on its pid, and is then killed outright
    (tmp_path / "sleeper.py").write_text(
        "import os, sys, time\nfrom r3lab.core.procs import die_with_parent\n"
        "die_with_parent(parent=int(sys.argv[1]))\nprint(os.getpid(), flush=True)\n"
        "time.sleep(120)\n"
    )
    code = (
        f"import os, subprocess, sys; subprocess.Popen([sys.executable, {str(tmp_path / 'sleeper.py')!r}, "
        "str(os.getpid())]).wait()"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait(timeout=60)
    deadline = time.monotonic() + 60  # a bound for a hang only: the kernel signals it at once; it would sleep 120 s
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def _running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_kills_what_ignores_its_signal_within_the_grace():
    code = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    proc.stdout.readline()
    t0 = time.monotonic()
    assert stop({"stubborn": proc}, signal.SIGINT, grace=0.5) == []
    # killed once the given grace was over: well inside the 60 s default grace however busy the machine is
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - t0 < 30


def test_sigterm_becomes_an_exit_that_runs_finally_clauses():
    ran = []
    with pytest.raises(SystemExit) as info:
        try:
            with exit_on_signals():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler runs between bytecodes: never reached
        finally:
            ran.append(True)
    assert info.value.code == 128 + signal.SIGTERM and ran == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back
    assert signal_of(info.value) == signal.SIGTERM and signal_of(KeyboardInterrupt()) == signal.SIGINT
    assert signal_of(RuntimeError("a job failed")) == signal.SIGINT
