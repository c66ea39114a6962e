"""The Ray backend against a real Ray cluster on loopback, started once for the module: `ray start --head` on
127.0.0.1 (its own temp dir), the sweep joining it by address, each run a Ray task that runs the run's own process;
a run that fails said as it fails, with its status file; then a resume with no address, on a cluster the sweep
starts for itself and ends; at the end every process either cluster started is gone.

One scenario, two runs in all (one done, one failed then rerun): each run costs a Ray worker and a process that
loads the model, and a cluster's start costs more than both."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from r3lab.cli.app import main
from r3lab.core import env
from r3lab.recipe.shipping import SHIPPED
from r3lab.sweep.results import load_sweep
from r3lab.sweep.status import LOG, read_status

pytestmark = pytest.mark.slow
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
STARTS = 3  # Ray's raylet gives its agents 15 s to report their ports: a loaded machine may need another start


def _ray():
    try:
        import ray  # noqa: F401
    except ImportError:
        if env.IN_CI:
            pytest.fail("Ray is missing: CI installs r3lab[cluster] (make setup)")
        pytest.skip("Ray is not installed: pip install 'r3lab[cluster]'")
    return Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _family(pid: int) -> set[int]:
    try:
        return {pid} | {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _session(sid: int) -> set[int]:
    """Every process of the session `ray start` leads, and theirs: what it started, even once it has exited."""
    out = set()
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                out |= _family(p.pid)
        except (ProcessLookupError, PermissionError):
            pass
    return out


def _alive(pids) -> list[int]:
    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _end(head, seen: set[int]) -> list[int]:
    """Stop a head (`ray start --block` ends what it started) and wait for its processes; the ones left, by pid."""
    seen |= _session(head.pid)
    try:
        os.killpg(head.pid, signal.SIGTERM)  # the group outlives a `ray start` that failed: its GCS and monitors
    except ProcessLookupError:
        pass
    try:
        head.wait(timeout=15)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()
    deadline = time.monotonic() + 30
    while _alive(seen) and time.monotonic() < deadline:
        time.sleep(0.5)
    return _alive(seen)


@pytest.fixture(scope="module")
def cluster():
    """(address, the head's process, pids seen) of a Ray head on 127.0.0.1; stopped afterwards, every process of it
    gone (those of a start that failed too)."""
    ray = _ray()
    temp = Path(tempfile.mkdtemp(prefix="r3ray-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    log = open(temp / "head.log", "w")
    seen, head, left = set(), None, []
    try:
        for _attempt in range(STARTS):
            port = _free_port()
            cmd = [
                str(ray),
                "start",
                "--head",
                "--block",
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                str(port),
                "--num-cpus",
                "2",
                "--num-gpus",
                "0",
                "--include-dashboard",
                "false",
                "--include-log-monitor",
                "false",
                "--no-monitor",
                "--disable-usage-stats",
                "--temp-dir",
                str(temp),
            ]
            # loopback only, and no token: a ~/.ray/auth_token another cluster left here must not decide it. No
            # autoscaler monitor or log monitor (a fixed cluster, logs in the runs' folders): two Python processes
            # fewer importing Ray while the raylet's agents have their 15 s
            head = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **QUIET}
            )
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in (temp / "head.log").read_text():
                if head.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            else:
                break
            left += _end(head, seen)
        else:
            pytest.fail(f"ray start did not come up in {STARTS} tries:\n{(temp / 'head.log').read_text()[-3000:]}")
        seen |= _session(head.pid)
        yield f"127.0.0.1:{port}", head, seen
    finally:
        if head is not None:
            left += _end(head, seen)
        for p in set(left):  # only the cluster's own processes, by pid
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes outlived the cluster: {sorted(set(left))}"


def _sweep(*args) -> int:
    """`r3lab sweep ...`, started again once when Ray's own start timed out (its raylet gets 15 s for its agents)."""
    for attempt in range(2):
        try:
            return main(["sweep", *map(str, args)])
        except Exception as e:
            if attempt or "timed out during startup" not in str(e):
                raise


def test_a_sweep_on_a_running_cluster_then_resumed_on_its_own(cluster, tmp_path, capsys, monkeypatch):
    address, head, seen = cluster
    for k, v in QUIET.items():  # Ray >= 2.59 would write a token into the shared ~/.ray for a local cluster
        monkeypatch.setenv(k, v)
    held, bad = tmp_path / "held", tmp_path / "bad"
    assert main(["data", "build", "--out", str(held), "--n", "2", "--seed", "5", "--filter", "false"]) == 0
    bad.mkdir()
    (bad / "samples.jsonl").write_text("not json\n")  # passes the sweep's checks, fails in the run
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"command: eval\nsettings: {{policy: {SHIPPED / 'r3-tiny-sft'}, n: 2, necessity: false, "
        f"max-crops: 1}}\ngrid: {{data: [{held}, {bad}]}}\nseeds: [0]\n"
    )
    out = tmp_path / "sw"
    capsys.readouterr()

    # joined by address: each run a Ray task; the failed one said as it fails, the sweep's exit status 1
    assert _sweep(spec, "--out", out, "--backend", "ray", "--address", address, "--report", "false") == 1
    said = capsys.readouterr().out
    seen |= _session(head.pid)  # the workers the tasks ran in
    assert "Ray (127.0.0.1:" in said
    failed_line = [ln for ln in said.splitlines() if "failed (exit code 2 in eval)" in ln]
    assert len(failed_line) == 1 and "not valid JSON" in failed_line[0] and LOG in failed_line[0], said
    runs = {r["point"]["data"]: out / "runs" / r["folder"] for r in load_sweep(out).runs}
    done, failed = read_status(runs[str(held)]), read_status(runs[str(bad)])
    assert (done.state, done.backend, done.steps_done, done.exit_code) == ("done", "ray", ["eval", "scores"], 0)
    assert (failed.state, failed.backend, failed.cause, failed.step) == ("failed", "ray", "exit code 2", "eval")
    # the run's own process: `r3lab eval`'s files and its log, written under the Ray task
    assert (runs[str(held)] / "eval" / "results.json").is_file() and "not valid JSON" in (
        runs[str(bad)] / LOG
    ).read_text()

    with pytest.raises(ValueError, match="asks for .*GPU"):  # more than the cluster has: said before any run
        main(
            [
                "sweep",
                str(spec),
                "--out",
                str(tmp_path / "sw2"),
                "--backend",
                "ray",
                "--address",
                address,
                "--gpus-per-run",
                "1",
            ]
        )
    assert {r["status"].state for r in load_sweep(tmp_path / "sw2").runs} == {"pending"}

    # the data fixed, a resume with no address: a cluster of its own, only the failed run again, then ended
    shutil.copytree(held, bad, dirs_exist_ok=True)
    before = _family(os.getpid())
    assert _sweep(spec, "--out", out, "--backend", "ray", "--workers", "1", "--report", "false") == 0
    assert "1 done, 1 to run on Ray (local cluster)" in capsys.readouterr().out
    again = read_status(runs[str(bad)])
    assert (again.state, again.backend, again.attempts, read_status(runs[str(held)]).attempts) == ("done", "ray", 2, 1)
    deadline = time.monotonic() + 30
    while _alive(_family(os.getpid()) - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(_family(os.getpid()) - before), "the sweep's own Ray cluster outlived it"
