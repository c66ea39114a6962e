"""A run's status file and the cause of a failure, as the sweep reports it."""

import signal

import pytest

from r3lab.sweep.status import RunStatus, cause_of, error_line, read_status, start, write_status


def test_causes():
    assert cause_of(2, "loading\nerror: data x is not a dataset  (--debug shows the traceback)\n") == (
        "exit code 2",
        "error: data x is not a dataset",
    )
    assert cause_of(1, "Traceback ...\n  File x\nRuntimeError: boom\n") == ("exit code 1", "RuntimeError: boom")
    assert cause_of(1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate")[0] == "out of memory"
    assert cause_of(-signal.SIGKILL, "")[0] == "out of memory"
    assert cause_of(128 + signal.SIGKILL, "")[0] == "out of memory"
    assert cause_of(-signal.SIGTERM, "") == ("signal SIGTERM", "ended by SIGTERM")
    assert cause_of(-9, "", timed_out=True)[0] == "timeout"
    assert error_line("") == ""


def test_status_round_trip_and_a_bad_file(tmp_path):
    assert read_status(tmp_path).state == "pending"
    st = start(tmp_path)
    assert st.state == "running" and st.attempts == 1 and st.pid > 0
    write_status(tmp_path, RunStatus("failed", "exit code 1", "error: x", 1, "eval", ["train"], 1))
    again = start(tmp_path)
    assert again.attempts == 2 and again.steps_done == ["train"]  # a rerun starts after the steps done
    (tmp_path / "status.json").write_text('{"state": "exploded"}')
    with pytest.raises(ValueError, match="status.json: state 'exploded'.*delete it"):
        read_status(tmp_path)
