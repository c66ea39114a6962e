""".ci/run: both suites run whatever the first gives, both are reported, and either failing fails CI.

The script runs in a copy of the repository's .ci folder with a stand-in `make` first on PATH, which logs each
call and fails the targets it is told to."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = """#!/bin/sh
echo "$*" >> "$CALLS"
for t in $FAIL; do
  case " $* " in *" $t "*) echo "make: *** [$t] Error 2" >&2; exit 2;; esac
done
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not shutil.which("bash"), reason="a bash script")


def ci(tmp_path: Path, fail: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "make").write_text(MAKE)
    (bin_ / "make").chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls), "FAIL": fail}
    run = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=60)
    return run, sorted(calls.read_text().splitlines())


@pytest.mark.parametrize(
    "fail, code, reported",
    [
        ("", 0, ["make test: passed", "make test-py312: passed"]),
        ("test", 1, ["make test: FAILED (exit 2", "make test-py312: passed"]),
        ("test-py312", 1, ["make test: passed", "make test-py312: FAILED (exit 2"]),
        ("test test-py312", 1, ["make test: FAILED (exit 2", "make test-py312: FAILED (exit 2"]),
        ("-j2", 1, ["make test: FAILED (exit 2", "make test-py312: passed"]),  # the set-up failed
    ],
    ids=["both-pass", "first-fails", "second-fails", "both-fail", "setup-fails"],
)
def test_both_suites_run_and_are_reported_whatever_the_first_gives(tmp_path, fail, code, reported):
    run, calls = ci(tmp_path, fail)
    assert run.returncode == code, run.stdout + run.stderr
    assert "test-py312" in calls  # the second suite ran even when the first failed
    assert ("test" in calls) == (fail != "-j2")  # make test is not run on a failed set-up
    summary = [ln for ln in run.stdout.splitlines() if ln.startswith("[ci] ")]
    assert len(summary) == 2 and all(ln.startswith(f"[ci] {want}") for ln, want in zip(summary, reported)), summary


def test_a_python_312_environment_that_does_not_install_is_reported_and_fails_ci(tmp_path):
    run, calls = ci(tmp_path, "venv312")
    assert run.returncode == 1 and "test" in calls and "test-py312" not in calls
    assert "make test: passed" in run.stdout and "make test-py312: NOT RUN" in run.stdout
    assert "the Python 3.12 environment did not install" in run.stderr


def test_a_green_runs_times_are_recorded_and_stated_from_the_record(tmp_path, monkeypatch):
    """The README's time for make test and CI comes from a green .ci/run's own closing lines, never a failed one."""
    import shutil

    from r3lab.course import catalog, syllabus, timing

    times = tmp_path / "times.json"
    shutil.copy(timing.TIMES, times)
    log = tmp_path / "ci.log"
    log.write_text("... 1755 passed ...\n[ci] make test: passed (1262 s)\n[ci] make test-py312: passed (211 s)\n")
    assert timing.record_ci(log, times) == {"test": 1262, "test_py312": 211}
    assert timing.ci_seconds("test", times) == 1262 and timing.ci_seconds("", times) == 1473
    failed = tmp_path / "failed.log"
    failed.write_text("[ci] make test: FAILED (exit 2, 1653 s)\n[ci] make test-py312: passed (193 s)\n")
    with pytest.raises(ValueError, match="green .ci/run"):
        timing.record_ci(failed, times)
    assert timing.ci_seconds("test", times) == 1262  # the failed log recorded nothing
    monkeypatch.setattr(catalog, "TIMES", times)
    assert syllabus.phrase("time", "ci:test") == "21.0 min" and syllabus.phrase("time", "ci") == "24.6 min"
