"""The pre-class check: can this machine run the course, and how long will each lesson take here?

    r3lab notebooks check            (`make check`; about a minute)

It looks at what the lessons need (Python, the packages, the Jupyter kernel, memory, disk, the shipped
checkpoints, how plotly's figures will be drawn), then times a small calibration of r3-tiny (a few SFT steps and a
greedy group of rollouts from the shipped checkpoint, one thread) and scales each lesson's measured CPU seconds
(`times.json`; its wall seconds where no CPU seconds were recorded) by how this machine's calibration compares with
the reference machine's, recorded there with `--record` when the series' times were measured. CPU seconds, not wall
seconds, are compared: a busy machine shares its cores, and the projection is for the machine when it is free.
The verdict is one line: the machine can run the course or not, and why.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import timing

NEEDS = ("torch", "transformers", "papermill", "nbformat", "nbconvert", "ipykernel", "matplotlib", "plotly")
OPTIONAL = {"kaleido": "plotly's own PNGs (else matplotlib draws them)"}
MIN_MEMORY_GB, MIN_DISK_GB = 2.0, 1.0  # the kernel peaks below 0.7 GB; Binder's 2 GB runs every lesson


@dataclass
class Report:
    """What the check found: one row per fact (name, value, ok), the calibration and the projected times."""

    facts: list[tuple[str, str, bool]] = field(default_factory=list)
    calibration_s: float | None = None  # CPU seconds of the calibration here
    wall_s: float | None = None  # its wall seconds (a busy machine: more than its CPU seconds)
    reference_s: float | None = None  # CPU seconds of the calibration on the reference machine
    projected: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(ok for _, _, ok in self.facts)

    @property
    def factor(self) -> float | None:
        return self.calibration_s / self.reference_s if self.calibration_s and self.reference_s else None

    def lines(self) -> list[str]:
        out = [f"{'ok ' if ok else 'NO '} {name}: {value}" for name, value, ok in self.facts]
        if self.calibration_s is not None:
            rel = (
                f", {self.factor:.1f}x the reference machine's {self.reference_s:.1f} s"
                if self.factor
                else " (no reference recorded: times below are the reference machine's)"
            )
            out.append(f"    calibration: {self.calibration_s:.1f} CPU s ({self.wall_s:.1f} s of wall time){rel}")
        if self.projected:
            out.append("    expected lesson times here, the machine otherwise idle (default parameters):")
            out += [f"      {name:<38} {timing.fmt(s)}" for name, s in self.projected.items()]
            out.append(f"      {'the whole series':<38} {timing.fmt(sum(self.projected.values()))}")
        out.append(
            (
                "the machine can run the course"
                if self.ok
                else "the machine cannot run the course as it is: "
                + "; ".join(f"{n} ({v})" for n, v, ok in self.facts if not ok)
            )
        )
        return out


def _memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):  # not a POSIX system: not measured
        return None


def facts(root: Path | None = None) -> list[tuple[str, str, bool]]:
    """(what, its value, whether it meets the course's need) for everything but the calibration."""
    from importlib.util import find_spec

    from ..core.env import ASSETS

    out = [("python", platform.python_version(), sys.version_info >= (3, 10))]
    from .lesson import EXTRAS
    from .syllabus import LESSONS

    missing = [m for m in NEEDS if find_spec(m) is None]
    out.append(
        (
            "packages",
            "all there" if not missing else "missing: " + ", ".join(missing) + " (pip install -e '.[course]')",
            not missing,
        )
    )
    for extra, (module, use) in EXTRAS.items():  # a lesson's own library: that lesson cannot run without it
        lessons = ", ".join(x.notebook[:2] for x in LESSONS if extra in x.extras)
        out.append(
            (
                module,
                "installed"
                if find_spec(module)
                else f"not installed: lessons {lessons} need it ({use}): pip install -e '.[course]'",
                find_spec(module) is not None,
            )
        )
    for name, why in OPTIONAL.items():
        out.append((name, "installed" if find_spec(name) else f"not installed: {why}", True))
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            KernelSpecManager().get_kernel_spec("r3lab")
            out.append(("Jupyter kernel r3lab", "registered", True))
        except NoSuchKernel:
            out.append(("Jupyter kernel r3lab", "not registered yet: the runner registers it on first use", True))
    except ImportError:
        pass  # reported as a missing package above
    mem = _memory_gb()
    out.append(("memory", "not measured" if mem is None else f"{mem:.1f} GB", mem is None or mem >= MIN_MEMORY_GB))
    free = shutil.disk_usage(root or Path.cwd()).free / 1e9
    out.append(("free disk", f"{free:.1f} GB", free >= MIN_DISK_GB))
    out.append(("CPUs", f"{os.cpu_count()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})", True))
    ckpts = [
        n
        for n in ("r3-tiny-base", "r3-tiny-sft", "r3-tiny-rgrpo")
        if not (ASSETS / "checkpoints" / n / "config.json").is_file()
    ]
    out.append(("shipped checkpoints", "all there" if not ckpts else "missing: " + ", ".join(ckpts), not ckpts))
    from ..viz.static import figure_backend

    out.append(("plotly figures", figure_backend(), True))
    return out


def calibrate(repeats: int = 1) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a small fixed workload of r3-tiny on one thread: 4 SFT steps of 8 samples from
    the shipped SFT checkpoint and a greedy rollout of 8 held-out questions (the lessons' two kinds of work); the
    best of `repeats`."""
    import torch

    from ..core.env import ASSETS, seed_everything
    from ..data.vlir import build_samples
    from ..engine.config import RolloutConfig
    from ..engine.rollouts import rollout
    from ..model.policy import load_policy
    from ..train.config import SFTConfig
    from ..train.sft import train as train_sft

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best, wall = float("inf"), float("inf")
        for _ in range(repeats):
            seed_everything(0)
            policy = load_policy(ASSETS / "checkpoints" / "r3-tiny-sft")
            data = build_samples(32, seed=0, families=["read_one", "compare_two"], view=policy.view, progress=False)
            t0, c0 = time.perf_counter(), time.process_time()
            train_sft(policy, data, SFTConfig(steps=4, batch_size=8, warmup=1, seed=0), callbacks=[])
            rollout(policy, data[:8], RolloutConfig(group_size=1, greedy=True, max_new_tokens=96), progress=False)
            best, wall = min(best, time.process_time() - c0), min(wall, time.perf_counter() - t0)
        return best, wall
    finally:
        torch.set_num_threads(threads)


def run_check(calibration: bool = True, times: Path | None = None) -> Report:
    """Every fact, then (if `calibration`) the calibration and each lesson's projected default time."""
    from .syllabus import LESSONS

    path = times or timing.TIMES
    report = Report(facts=facts())
    if calibration and report.ok:
        report.calibration_s, report.wall_s = calibrate()
        report.reference_s = (timing.load(path).get("calibration") or {}).get("cpu_s")
        factor = report.factor or 1.0
        report.projected = {
            x.notebook: factor
            * (
                timing.seconds(x.notebook, "cpu_s", path, required=False)
                or timing.seconds(x.notebook, "default_s", path)
            )
            for x in LESSONS
        }
    return report


def record_calibration(cpu_s: float, path: Path | None = None) -> None:
    """Store this machine's calibration (CPU seconds) as the reference (`times.json`'s "calibration"), beside the
    lesson times measured on it."""
    path = path or timing.TIMES
    data = timing.load(path)
    data["calibration"] = {
        "cpu_s": round(cpu_s, 2),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
