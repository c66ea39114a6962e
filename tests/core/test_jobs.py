"""The recipe's scheduler: jobs and their DDP ranks end with it, however it ends.

A stand-in job (it writes its pid and sleeps) runs through the very launcher the recipe uses (`run_jobs`, and
torchrun for a critical job), so the tree is real but costs no training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from r3lab.core.jobs import STOP_GRACE, run_jobs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")

STANDIN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    out, job = sys.argv[1], sys.argv[2]
    Path(out, f"{job}.{os.environ.get('RANK', '0')}.pid").write_text(f"{os.getpid()} {os.getppid()}")
    time.sleep(300)
""")

PARENT = textwrap.dedent("""
    import signal, sys
    from pathlib import Path
    # Ctrl-C reaches a program in a terminal's foreground with Python's handler; this test may run from a
    # background shell (`make test &` in a script), whose children inherit SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from r3lab.core.jobs import run_jobs
    out, kind = Path(sys.argv[1]), sys.argv[2]
    jobs = {"stage:a": ()} if kind == "ddp" else {"eval:a": (), "eval:b": ()}
    run_jobs(jobs, lambda j: False, out, "standin_job", 2, critical=("stage:a",), progress=False)
""")


def alive(pid: int) -> bool:
    """Running (a zombie left to a parent that does not reap it has ended: it holds no CPU or memory)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_tree(tmp_path: Path, kind: str) -> tuple[subprocess.Popen, set[int]]:
    """The scheduler as its own process, running two stand-in jobs (two plain processes, or one job as two
    torchrun ranks); returns it and the pids of its descendants once every job has started."""
    (tmp_path / "standin_job.py").write_text(STANDIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    out.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(out), kind], env=env)
    # a bound for a hang only (seconds here, alone): torchrun imports torch first, slow on a busy 2-core machine
    deadline = time.monotonic() + 300
    while len(list(out.glob("*.pid"))) < 2:
        if parent.poll() is not None or time.monotonic() > deadline:
            parent.kill()
            logs = "\n".join(p.read_text() for p in (out / "logs" / "jobs").glob("*.log"))
            pytest.fail(f"the stand-in jobs did not start (scheduler exit {parent.poll()}):\n{logs}")
        time.sleep(0.2)
    time.sleep(0.5)  # every rank past its launcher's die_with_parent (it wrote its pid after it)
    pids = set()
    for f in out.glob("*.pid"):
        pids.update(int(v) for v in f.read_text().split())
    pids.discard(parent.pid)
    return parent, pids


@pytest.mark.parametrize(
    "kind, sig", [("ddp", signal.SIGTERM), ("ddp", signal.SIGKILL), ("plain", signal.SIGKILL), ("plain", signal.SIGINT)]
)
def test_no_job_outlives_the_scheduler(tmp_path, kind, sig):
    parent, pids = start_tree(tmp_path, kind)
    assert pids and all(alive(p) for p in pids)
    assert len(pids) == (3 if kind == "ddp" else 2)  # two ranks and their torchrun / two jobs
    parent.send_signal(sig)
    try:
        parent.wait(timeout=STOP_GRACE + 60)  # it stops its jobs (each within the grace), then ends
        deadline = time.monotonic() + 60  # a bound for a hang only: what outlives its scheduler sleeps 300 s
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = sorted(p for p in pids if alive(p))
        assert not left, f"processes {left} outlived their scheduler (ended with signal {sig})"
        if sig == signal.SIGTERM:  # it stopped its jobs, then ended with the signal's status
            assert parent.returncode == 128 + signal.SIGTERM
    finally:
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_failed_job_stops_the_others_and_names_its_log(tmp_path, monkeypatch, sigint):
    """The other job is told to stop (SIGINT: training saves) and ends on it, not killed once the grace is over,
    also where the scheduler ignores SIGINT (started by `cmd &` in a script, or nohup): asserted by what the jobs
    record, never by the seconds a loaded machine takes."""
    (tmp_path / "standin_fail.py").write_text(
        textwrap.dedent("""
        import sys, time
        from pathlib import Path
        out = Path(sys.argv[1])
        if sys.argv[2] == "eval:bad":
            deadline = time.monotonic() + 300  # a bound for a hang only
            while not (out / "slow.ready").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # fails once the other job is ready to be stopped, however slowly it started
            raise SystemExit("broken on purpose")
        try:
            (out / "slow.ready").write_text("")
            time.sleep(300)
        except KeyboardInterrupt:
            (out / "slow.stopped").write_text("SIGINT")
            raise
    """)
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    before = signal.signal(signal.SIGINT, signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler)
    try:
        with pytest.raises(RuntimeError, match=r"recipe job eval:bad failed \(exit 1\); its log is .*eval_bad\.log"):
            run_jobs({"eval:slow": (), "eval:bad": ()}, lambda j: False, tmp_path, "standin_fail", 2, progress=False)
    finally:
        signal.signal(signal.SIGINT, before)
    assert (tmp_path / "slow.stopped").read_text() == "SIGINT"  # it was stopped, not waited for or killed
