"""The Ray backend against a real Ray cluster on loopback: `ray start --head` on 127.0.0.1 (its own temp dir), the
sweep joining it by address, each run a Ray task; then the cluster stopped and every process it started gone.
Without --address the sweep starts a local cluster of its own and ends it."""
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
from r3lab.sweep.status import read_status

pytestmark = pytest.mark.slow
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


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


def _alive(pids) -> list[int]:
    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture(scope="module")
def cluster():
    """(address, the head's process) of a Ray head on 127.0.0.1; stopped afterwards, every process of it gone."""
    ray = _ray()
    temp = Path(tempfile.mkdtemp(prefix="r3ray-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    log = open(temp / "head.log", "w")
    seen, head = set(), None
    try:
        for attempt in range(2):  # Ray gives a raylet 30 s to register: a loaded machine may need a second start
            port = _free_port()
            cmd = [str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                   "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false", "--disable-usage-stats",
                   "--temp-dir", str(temp)]
            # loopback only, and no token: a ~/.ray/auth_token another cluster left here must not decide it
            head = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **QUIET})
            deadline = time.monotonic() + 180
            while "Ray runtime started" not in (temp / "head.log").read_text():
                if head.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            else:
                break
            seen |= _family(head.pid)
            _stop(head)
        else:
            pytest.fail(f"ray start did not come up twice:\n{(temp / 'head.log').read_text()[-3000:]}")
        seen |= _family(head.pid)
        yield f"127.0.0.1:{port}", head, seen
    finally:
        if head is not None:
            seen |= _family(head.pid)
            _stop(head)
        deadline = time.monotonic() + 30
        while _alive(seen) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _alive(seen)
        for p in left:  # only the cluster's own processes, by pid
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes outlived the cluster: {left}"


def _stop(head) -> None:
    if head.poll() is None:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` ends the processes it started
        try:
            head.wait(timeout=15)
        except subprocess.TimeoutExpired:  # its processes share its fate (PR_SET_PDEATHSIG): they end with it
            head.kill()
            head.wait()


def _sweep(*args) -> int:
    """`r3lab sweep ...`, started again once when Ray's own start timed out (its raylet gets 30 s to register)."""
    for attempt in range(2):
        try:
            return main(["sweep", *map(str, args)])
        except Exception as e:
            if attempt or "timed out during startup" not in str(e):
                raise


def _spec(tmp_path, data, seeds):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"command: eval\nsettings: {{policy: {SHIPPED / 'r3-tiny-sft'}, data: {data}, n: 2, "
                    f"necessity: false, max-crops: 1}}\nseeds: {seeds}\n")
    return str(spec)


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    out = tmp_path_factory.mktemp("raydata") / "held"
    assert main(["data", "build", "--out", str(out), "--n", "2", "--seed", "5", "--filter", "false"]) == 0
    return out


def test_a_sweep_joins_a_running_cluster_by_address_each_run_a_task(cluster, held, tmp_path, capsys, monkeypatch):
    address, head, seen = cluster
    for k, v in QUIET.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "sw"
    assert _sweep(_spec(tmp_path, held, [0, 1]), "--out", out, "--backend", "ray", "--address", address,
                  "--report", "false") == 0
    assert "Ray (127.0.0.1:" in capsys.readouterr().out
    seen |= _family(head.pid)  # the workers the tasks ran in
    runs = load_sweep(out).runs
    assert [r["status"].state for r in runs] == ["done", "done"]
    assert {read_status(out / "runs" / r["folder"]).backend for r in runs} == {"ray"}
    with pytest.raises(ValueError, match="asks for .*GPU"):  # more than the cluster has: said before any run
        main(["sweep", _spec(tmp_path, held, [2]), "--out", str(tmp_path / "sw2"), "--backend", "ray", "--address",
              address, "--gpus-per-run", "1"])


def test_without_an_address_the_sweep_starts_its_own_cluster_and_ends_it(held, tmp_path, monkeypatch):
    _ray()
    for k, v in QUIET.items():  # Ray >= 2.59 would write a token into the shared ~/.ray for a local cluster
        monkeypatch.setenv(k, v)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out = tmp_path / "sw"
    assert _sweep(_spec(tmp_path, held, [0]), "--out", out, "--backend", "ray", "--workers", "1",
                  "--report", "false") == 0
    assert read_status(next((out / "runs").iterdir())).backend == "ray"
    deadline = time.monotonic() + 30
    while _alive(_family(os.getpid()) - {os.getpid()} - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(_family(os.getpid()) - {os.getpid()} - before), "the sweep's own Ray cluster outlived it"
