"""`run_sweep`: a spec's runs into a folder, on the local pool or a Ray cluster, resumable.

Before the first run starts: the spec's shape (`SweepSpec`), the command's own check of every run's settings
(`check`, given by the CLI: the command's parser and config classes), the number of runs against `max_points`, the
folder against a sweep already there. Then every run not done runs (a failed or unfinished one again); a failure is
printed as it happens, with its one-line error and its log, and the others go on. One writer per sweep folder
(`FolderLock`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.files import FolderLock
from .folder import prepare
from .local import cores, run_local
from .spec import SweepSpec
from .status import LOG, RunStatus, read_status, write_status

BACKENDS = ("local", "ray")
MAX_POINTS = 64  # runs a sweep starts without --max-points


@dataclass
class SweepOutcome:
    """What a sweep ended with: every run's status by its folder."""

    folder: Path
    statuses: dict = field(default_factory=dict)  # run folder name -> RunStatus
    ran: int = 0  # runs started by this call
    seconds: float = 0.0
    notes: list = field(default_factory=list)  # what a resume changed (added values, seeds)
    cluster: dict = field(default_factory=dict)  # Ray: the cluster's CPUs / GPUs and address

    @property
    def failed(self) -> list[str]:
        return [k for k, s in self.statuses.items() if s.state != "done"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def line(self) -> str:
        done = len(self.statuses) - len(self.failed)
        return (
            f"sweep {self.folder}: {done}/{len(self.statuses)} runs done"
            + (
                f", {len(self.failed)} failed or unfinished (rerun the same command to retry them)"
                if self.failed
                else ""
            )
            + f"; {self.ran} ran now in {self.seconds:.1f} s"
        )


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
    workers: int = 0,
    backend: str = "local",
    address: str = "",
    max_points: int = MAX_POINTS,
    extend: bool = False,
    timeout: float = 0.0,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    check: Callable[[SweepSpec], dict] | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run `spec` into `out` (see the module's docstring). `check(spec)`: the command's own check of every run,
    returning facts the report needs (chance levels); `workers`: the local pool's size (0: the cores) or the
    local Ray cluster's CPUs."""
    from tqdm.auto import tqdm

    from ..core.env import progress_disabled

    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: choose local or ray")
    if workers < 0 or max_points < 1 or timeout < 0 or cpus_per_run <= 0 or gpus_per_run < 0:
        raise ValueError(
            f"workers {workers}, max_points {max_points}, timeout {timeout}, cpus_per_run "
            f"{cpus_per_run}, gpus_per_run {gpus_per_run}: give workers >= 0 (0: the cores), "
            "max_points >= 1, timeout >= 0 (0: none), cpus > 0, gpus >= 0"
        )
    if address and backend != "ray":
        raise ValueError("--address is for --backend ray")
    n = len(spec.points()) * len(spec.seeds)
    if n > max_points:
        raise ValueError(
            f"the spec makes {n} runs ({len(spec.points())} points x {len(spec.seeds)} seeds), more than "
            f"--max-points {max_points}: shrink the grid or the seeds, or raise --max-points"
        )
    facts = check(spec) if check is not None else {}
    if backend == "ray":
        from .ray_backend import import_ray

        import_ray()  # a missing extra is said before anything is written
    out = Path(out)
    t0 = time.monotonic()
    with FolderLock(out, "sweep folder"):
        runs, notes = prepare(out, spec, extend, timeout, extra={"facts": facts})
        for note in notes:
            echo(f"sweep: {note}")
        statuses = {d.name: _settle(d) for _, d in runs}
        todo = [d for _, d in runs if statuses[d.name].state != "done"]
        echo(
            f"sweep: {len(runs)} runs ({len(spec.points())} points x {len(spec.seeds)} seeds) in {out}; "
            f"{len(runs) - len(todo)} done, {len(todo)} to run on "
            + (f"{workers or cores()} local workers" if backend == "local" else f"Ray ({address or 'local cluster'})")
        )
        bar = tqdm(
            total=len(runs),
            initial=len(runs) - len(todo),
            desc="sweep",
            unit="run",
            disable=progress_disabled(progress),
        )

        def on_end(d: Path, st: RunStatus) -> None:
            statuses[d.name] = st
            bar.update(1)
            if st.state != "done":  # said when it happens, not at the end
                bar.write(f"sweep: run {d.name} {st.line()}  (log: {d / LOG})")

        cluster = {}
        try:
            if backend == "local":
                run_local(todo, workers or cores(), on_end)
            else:
                from .ray_backend import run_ray

                cluster = run_ray(todo, on_end, address, cpus_per_run, gpus_per_run, workers)
        finally:
            bar.close()
        return SweepOutcome(out, statuses, len(todo), time.monotonic() - t0, notes, cluster)


def _settle(d: Path) -> RunStatus:
    """A run's status as this sweep starts; one left running by a sweep that was killed is failed (interrupted)."""
    st = read_status(d)
    if st.state == "running":  # the folder's lock is ours, so no process runs it any more
        st.state, st.cause, st.pid = "failed", "interrupted", 0
        st.error = "the sweep that ran it ended without a word (killed?); this resume runs it again"
        write_status(d, st)
    return st
