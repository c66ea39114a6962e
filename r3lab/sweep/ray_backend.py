"""The cluster backend on Ray (`pip install 'r3lab[cluster]'`): each run one Ray task with its CPUs and GPUs, which
runs the run's process (`r3lab.sweep.cell`, the same as the local pool) as a subprocess.

Ray only schedules: statuses, logs and results stay in the runs' folders, so the sweep's folder must be one every
node sees at the same path (a shared filesystem), and r3lab and the data must be installed and laid out alike on
every node. `address`: a running cluster's (`auto`: the one `ray start` made on this machine, `127.0.0.1:6379`, ...);
none starts a local one, which ends with the sweep. Ctrl-C / SIGTERM cancel every task: its worker is interrupted,
which stops its run (training saves); after the recipe's grace, cancelled by force.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from ..core.jobs import STOP_GRACE
from ..core.procs import PARENT_ENV, exit_on_signals, signal_of, stop
from .cell import finish_dead
from .local import cell_command
from .status import BACKEND_ENV, LOG, RunStatus, read_status, write_status

RAY = ">=2.40,<3"  # the range r3lab[cluster] installs (tested: 2.60)
AUTH_MODE, AUTH_TOKEN = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"  # Ray's token authentication (Ray >= 2.52)


def run_task(run_dir: str) -> tuple[int, dict, str]:
    """A Ray task's body: the run's process, tied to this worker; (exit status, its status, the node)."""
    env = {**os.environ, PARENT_ENV: str(os.getpid()), BACKEND_ENV: "ray"}
    with open(Path(run_dir) / LOG, "a") as log:
        proc = subprocess.Popen(
            cell_command(run_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        proc.wait()
    except BaseException as e:  # ray.cancel: KeyboardInterrupt here; the run saves and ends first
        stop({"run": proc}, signal_of(e), STOP_GRACE)
        raise
    return proc.returncode, asdict(finish_dead(run_dir, proc.returncode)), socket.gethostname()


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(f"--backend ray needs Ray ({RAY}): pip install 'r3lab[cluster]'") from None
    return ray


def run_ray(
    run_dirs: Sequence[Path],
    on_end: Callable[[Path, RunStatus], None],
    address: str = "",
    cpus: float = 1.0,
    gpus: float = 0.0,
    workers: int = 0,
    on_start: Callable[[Path], None] = lambda d: None,
) -> dict:
    """Every folder of `run_dirs` as a Ray task; `on_end(folder, status)` as each ends. Returns the cluster's
    resources as Ray saw them."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a sweep never reports home
    options = dict(log_to_driver=False, configure_logging=False)
    if address:
        try:
            ctx = ray.init(address=address, **options)
        except ConnectionError as e:
            raise ConnectionError(
                f"{e}: is a Ray cluster running at {address}? One that asks for a token (Ray >= "
                f"2.52; `ray start` uses ~/.ray/auth_token when it exists) needs {AUTH_MODE}=token "
                f"here too, with its token in {AUTH_TOKEN} or ~/.ray/auth_token"
            ) from None
    else:  # a cluster of this machine, for this sweep only ("local": never another user's running one)
        ctx = ray.init(address="local", num_cpus=workers or None, include_dashboard=False, **options)
    try:
        resources = ray.cluster_resources()
        need = {"CPU": cpus, "GPU": gpus}
        if short := {k: v for k, v in need.items() if v and resources.get(k, 0) < v}:
            raise ValueError(
                f"each run asks for {short} but the Ray cluster at {address or 'this machine'} has "
                f"{ {k: resources.get(k, 0) for k in short} }: lower --cpus-per-run / --gpus-per-run or "
                "add nodes"
            )
        task = ray.remote(run_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0, name="r3lab-sweep-run")
        refs = {}
        with exit_on_signals():
            try:
                for d in run_dirs:
                    refs[task.remote(str(Path(d).resolve()))] = Path(d)
                    on_start(Path(d))
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
                    for ref in ready:
                        d = refs.pop(ref)
                        on_end(d, _outcome(ray, ref, d))
            except BaseException:
                _cancel(ray, refs)
                raise
        return {k: v for k, v in resources.items() if k in ("CPU", "GPU")} | {
            "address": getattr(ctx, "address_info", {}).get("gcs_address", address or "local")
        }
    finally:
        ray.shutdown()


def _outcome(ray, ref, d: Path) -> RunStatus:
    try:
        _, st, _host = ray.get(ref)
        return RunStatus(**st)
    except ray.exceptions.RayError as e:  # the worker or its node died: the run's own status may say more
        st = read_status(d)
        if st.state in ("done", "failed"):
            return st
        st.state, st.cause = "failed", "ray: " + type(e).__name__
        st.error = " ".join(str(e).split())[:400]
        return write_status(d, st)


def _cancel(ray, refs: dict) -> None:
    """Interrupt every task (each stops its run, which saves), wait the recipe's grace for the runs to end, then
    cancel by force."""
    for ref in refs:
        ray.cancel(ref, force=False)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(read_status(d).state == "running" for d in refs.values()):
        time.sleep(0.2)
    for ref, d in refs.items():
        if read_status(d).state == "running":
            ray.cancel(ref, force=True)
    left = list(refs)
    ray.wait(left, num_returns=len(left), timeout=10.0)
    for d in refs.values():
        if read_status(d).state == "running":
            finish_dead(d, -9)
