"""Sweeps of real runs (each the command's own CLI in its own process): a failure said as it happens while the others
go on, the exit status, a resume that reruns only what is not done, Ctrl-C that ends every run with the sweep,
a timeout, and a training sweep whose seed is the run's own."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from r3lab.cli.app import main
from r3lab.data import load_dataset
from r3lab.evaluation.chance import chance_of
from r3lab.recipe.shipping import SHIPPED
from r3lab.sweep.results import load_sweep
from r3lab.sweep.status import read_status

SFT = str(SHIPPED / "r3-tiny-sft")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweepdata")
    assert main(["data", "build", "--out", str(tmp / "held"), "--n", "3", "--seed", "5", "--filter", "false"]) == 0
    assert main(["data", "build", "--out", str(tmp / "train"), "--n", "8", "--seed", "6", "--filter", "false"]) == 0
    return tmp


def _spec(path, **values):
    path.write_text(json.dumps(values))
    return str(path)


def test_a_failed_run_is_said_when_it_fails_the_others_go_on_and_a_resume_reruns_it(data, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "samples.jsonl").write_text("not json\n")
    spec = _spec(
        tmp_path / "s.json",
        command="eval",
        settings={"policy": SFT, "n": 2, "necessity": False, "max-crops": 1},
        grid={"data": [str(data / "held"), str(bad)]},
        seeds=[0, 1],
    )
    out = tmp_path / "sw"
    assert main(["sweep", spec, "--out", str(out), "--workers", "2"]) == 1  # not every run finished
    text = capsys.readouterr()
    said = [ln for ln in (text.out + text.err).splitlines() if "failed (exit code 2 in eval)" in ln]
    assert len(said) == 2 and all("not valid JSON" in ln and "log.txt" in ln for ln in said), text
    sweep = load_sweep(out)
    states = {}
    for r in sweep.runs:
        states.setdefault(r["point"]["data"], []).append(r["status"].state)
    assert states == {str(data / "held"): ["done", "done"], str(bad): ["failed", "failed"]}
    frame = sweep.frame()
    assert len(frame) == 4 and set(frame["state"]) == {"done", "failed"}
    assert (out / "sweep.html").is_file() and (out / "sweep.csv").is_file()
    shutil.copytree(data / "held", bad, dirs_exist_ok=True)  # the data fixed
    assert main(["sweep", spec, "--out", str(out), "--workers", "2", "--report", "false"]) == 0
    attempts = {r["folder"]: read_status(out / "runs" / r["folder"]).attempts for r in load_sweep(out).runs}
    assert sorted(attempts.values()) == [1, 1, 2, 2]  # the done runs were kept, the failed ones ran again
    assert "2 done, 2 to run" in capsys.readouterr().out


def _tree(pid):
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _cmdline(pid):
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_ends_every_run_with_the_sweep_and_a_resume_completes_it(data, tmp_path, sig):
    """Ctrl-C reaches the terminal's process group; SIGTERM (kill, a scheduler) the sweep's process alone."""
    spec = _spec(
        tmp_path / "s.json",
        command="eval",
        settings={"policy": SFT, "data": str(data / "held"), "n": 3, "necessity": False},
        grid={"max-crops": [0, 1, 2]},
        seeds=[0],
    )
    out = tmp_path / "sw"
    cmd = [sys.executable, "-m", "r3lab.cli", "sweep", spec, "--out", str(out), "--workers", "2", "--report", "false"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    seen, deadline = set(), time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # until both workers run their eval (grandchildren of the sweep)
            seen |= _tree(proc.pid)
            if sum(1 for p in _tree(proc.pid) if "eval" in _cmdline(p)) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the sweep's runs did not start in 120 s")
        time.sleep(1.0)
        seen |= _tree(proc.pid)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the sweep's group
        else:
            os.kill(proc.pid, signal.SIGTERM)  # the sweep alone: it tells its runs
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 128 + sig, proc.stdout.read().decode()
    left = [p for p in seen if psutil.pid_exists(p) and _cmdline(p)]  # a zombie has no command line
    assert not left, f"processes outlived the sweep: {left}"
    states = [read_status(d).state for d in (out / "runs").iterdir()]
    assert "failed" in states and "running" not in states  # the interrupted runs say so
    causes = {read_status(d).cause for d in (out / "runs").iterdir() if read_status(d).state == "failed"}
    assert causes == {"interrupted"}
    if sig == signal.SIGTERM:
        return  # the folder is as Ctrl-C leaves it: its resume is the same
    assert main(["sweep", spec, "--out", str(out), "--workers", "2", "--report", "false"]) == 0
    assert all(read_status(d).state == "done" for d in (out / "runs").iterdir())


def test_a_run_past_its_timeout_is_stopped_and_says_so(data, tmp_path, capsys):
    spec = _spec(
        tmp_path / "s.json", command="eval", settings={"policy": SFT, "data": str(data / "held"), "n": 3}, seeds=[0]
    )
    out = tmp_path / "sw"
    assert main(["sweep", spec, "--out", str(out), "--timeout", "0.5", "--report", "false"]) == 1
    (run,) = (out / "runs").iterdir()
    st = read_status(run)
    assert st.state == "failed" and st.cause == "timeout" and st.step == "eval"
    assert "failed (timeout in eval)" in capsys.readouterr().out


def test_the_command_refuses_a_changed_spec_unless_extend_only_adds(data, tmp_path, capsys):
    """`r3lab sweep` into a folder that holds another spec: refused before anything is written, unless --extend and
    the new spec only adds seeds; then the runs there keep their folders. Each run is stopped at 0.5 s: what is
    tested is the folder, not the runs' outcome."""
    base = dict(command="eval", settings={"policy": SFT, "data": str(data / "held"), "n": 3}, seeds=[0])
    out = tmp_path / "sw"
    flags = ["--out", str(out), "--timeout", "0.5", "--report", "false"]
    assert main(["sweep", _spec(tmp_path / "a.json", **base), *flags]) == 1
    (first,) = (out / "runs").iterdir()
    held = (out / "sweep.json").read_text()
    more = _spec(tmp_path / "b.json", **{**base, "seeds": [0, 1]})
    with pytest.raises(ValueError, match="run with --extend"):
        main(["sweep", more, *flags])
    other = _spec(tmp_path / "c.json", **{**base, "settings": {**base["settings"], "n": 2}})
    with pytest.raises(ValueError, match="settings differs"):
        main(["sweep", other, *flags, "--extend"])
    fewer = _spec(tmp_path / "d.json", **{**base, "seeds": [1]})
    with pytest.raises(ValueError, match="only adds"):
        main(["sweep", fewer, *flags, "--extend"])
    assert (out / "sweep.json").read_text() == held and [p.name for p in (out / "runs").iterdir()] == [first.name]
    assert read_status(first).attempts == 1  # nothing ran
    capsys.readouterr()
    assert main(["sweep", more, *flags, "--extend"]) == 1
    assert "sweep: seeds: adds [1]" in capsys.readouterr().out
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2 and first in runs and read_status(first).attempts == 2  # the failed run ran again
    assert json.loads((out / "sweep.json").read_text())["spec"]["seeds"] == [0, 1]


def test_a_training_sweep_trains_each_seed_and_evaluates_it_on_the_same_questions(data, tmp_path):
    spec = _spec(
        tmp_path / "s.json",
        command="train rgrpo",
        seeds=[0, 1],
        settings={
            "policy": SFT,
            "data": str(data / "train"),
            "steps": 1,
            "batch-size": 4,
            "group-size": 2,
            "report-to": "trackio",
        },
        eval={"data": str(data / "held"), "n": 3},
    )
    out = tmp_path / "sw"
    assert main(["sweep", spec, "--out", str(out), "--workers", "2"]) == 0
    sweep = load_sweep(out)
    for r in sweep.runs:
        d = out / "runs" / r["folder"]
        state = json.loads(next((d / "train").glob("step_*/state.json")).read_text())
        assert state["config"]["seed"] == r["seed"] and state["step"] == 1
        assert json.loads((d / "eval" / "results.json").read_text())["rows"]["all"]["n"] == 3
    ids = [{q["sample_id"] for q in sweep._scores(r)} for r in sweep.runs]
    assert ids[0] == ids[1] and len(ids[0]) == 3  # every run answered the same held-out questions
    frame = sweep.frame()
    assert list(frame["seed"]) == [0, 1] and "crop_iou" in frame and "read_one.accuracy" in frame
    assert {"chance", "families"} <= set(sweep.record["facts"])
    assert sweep.record["facts"]["chance"] == chance_of(load_dataset(data / "held"))  # as `r3lab eval --audit` says
    # report_to: both runs wrote the sweep's one trackio folder at once, each its point and seed as hyperparameters
    records = [json.loads(ln) for f in (out / "trackio").rglob("*.jsonl") for ln in f.read_text().splitlines()]
    configs = {r["run"]: r["config"] for r in records if r.get("kind") == "metric"}
    assert sorted(configs) == sorted(r["folder"] for r in sweep.runs)
    assert {r["project"] for r in records if r.get("kind") == "metric"} == {out.name}
    assert sorted(c["sweep.seed"] for c in configs.values()) == [0, 1]
    assert all(c["seed"] == c["sweep.seed"] and c["sweep.run"] == run for run, c in configs.items())
