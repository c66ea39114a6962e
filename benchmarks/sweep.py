"""What a sweep costs beyond its runs, measured side by side in one run on this machine.

    python benchmarks/sweep.py [--runs 4] [--rounds 2]

* workers: the same `--runs` CPU-bound runs (`r3lab eval` of the shipped SFT model on 24 held-out questions, one
  OpenMP thread each) as a sweep with --workers 1 and --workers 2, alternated over `--rounds`; the best wall time of
  each. Target: 2 workers >= 1.7x faster than 1 (on two idle cores; the load average is recorded beside it).
* ray: `--runs` short runs (the same evaluation on `--ray-n` questions, so the backend's cost is not lost in the
  runs' own noise) on a Ray cluster of one CPU on loopback (`ray start --head`, the sweep joining it by address)
  against the local pool with one worker: (ray - local) / runs, the overhead per run, connecting included.
  Target: <= 2 s.
* report: `r3lab report sweep` (a fresh process, as a user runs it) of a finished 100 points x 3 seeds sweep
  (`r3lab.testing.mini_sweeps`, 100 questions a run, four metrics), its wall and CPU seconds. Target: <= 10 s.
Writes benchmarks/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SFT = ROOT / "assets" / "checkpoints" / "r3-tiny-sft"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
RAY_ENV = {**ENV, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}  # loopback; no ~/.ray token decides


def _r3lab(*args, check=True, env=None) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "r3lab.cli", *map(str, args)], env=env or ENV, capture_output=True, text=True
    )
    if check and done.returncode:
        raise RuntimeError(f"r3lab {' '.join(map(str, args))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def _spec(tmp: Path, runs: int, n: int = 24) -> Path:
    spec = tmp / f"spec-{n}.json"
    spec.write_text(
        json.dumps(
            {
                "command": "eval",
                "settings": {"policy": str(SFT), "data": str(tmp / "held"), "n": n, "necessity": False},
                "seeds": list(range(runs)),
            }
        )
    )
    return spec


def _sweep(spec: Path, out: Path, *flags, env=None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return _r3lab("sweep", spec, "--out", out, "--report", "false", *flags, env=env)


def _ray_head(tmp: Path, cpus: int):
    """A Ray head on loopback; started again once when Ray's own start timed out (a raylet gets 30 s to register)."""
    for attempt in range(2):
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        p = port.getsockname()[1]
        port.close()
        log = open(tmp / f"ray{attempt}.log", "w")
        head = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ray"),
                "start",
                "--head",
                "--block",
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                str(p),
                "--num-cpus",
                str(cpus),
                "--include-dashboard",
                "false",
                "--include-log-monitor",
                "false",
                "--no-monitor",
                "--disable-usage-stats",
                "--temp-dir",
                tempfile.mkdtemp(prefix="r3ray-", dir="/tmp"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=RAY_ENV,
        )
        while "Ray runtime started" not in (tmp / f"ray{attempt}.log").read_text():
            if head.poll() is not None:
                break
            time.sleep(0.5)
        else:
            return head, f"127.0.0.1:{p}"
        _stop_head(head)  # a start that failed leaves its GCS and API server running in its group
    raise RuntimeError((tmp / "ray1.log").read_text()[-2000:])


def _stop_head(head) -> None:
    try:
        os.killpg(head.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ray-n", type=int, default=4, help="questions per run in the Ray part")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--only", choices=("workers", "ray", "report"), default=None, help="one part alone")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="r3lab-bench-sweep-"))
    out = {"machine": {"cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()}}
    try:
        _r3lab("data", "build", "--out", tmp / "held", "--n", "24", "--seed", "5", "--filter", "false")
        spec = _spec(tmp, args.runs)
        times = {1: [], 2: []}
        for _ in range(args.rounds if args.only in (None, "workers") else 0):
            for w in (1, 2):
                times[w].append(round(_sweep(spec, tmp / f"w{w}", "--workers", w), 2))
        if times[1]:
            best = {w: min(v) for w, v in times.items()}
            out["workers"] = {
                "runs": args.runs,
                "seconds": times,
                "best": best,
                "speedup_2_over_1": round(best[1] / best[2], 3),
                "target": ">= 1.7",
            }
            print(
                f"workers: {args.runs} runs, 1 worker {best[1]:.1f} s, 2 workers {best[2]:.1f} s: "
                f"{best[1] / best[2]:.2f}x"
            )
        if not args.skip_ray and args.only in (None, "ray"):
            short = _spec(tmp, args.runs, args.ray_n)
            head, address = _ray_head(tmp, cpus=1)
            try:
                ray_t, local_t, loads = [], [], [os.getloadavg()[0]]
                for _ in range(args.rounds):
                    ray_t.append(
                        round(_sweep(short, tmp / "ray", "--backend", "ray", "--address", address, env=RAY_ENV), 2)
                    )
                    local_t.append(round(_sweep(short, tmp / "local1", "--workers", 1), 2))
                    loads.append(os.getloadavg()[0])
            finally:
                _stop_head(head)
            per_run = (min(ray_t) - min(local_t)) / args.runs
            out["ray"] = {
                "runs": args.runs,
                "questions_per_run": args.ray_n,
                "ray_seconds": ray_t,
                "local_1_worker_seconds": local_t,
                "overhead_per_run_s": round(per_run, 2),
                "load_average_1min": [round(v, 2) for v in loads],
                "target": "<= 2",
            }
            print(f"ray: {min(ray_t):.1f} s against the local pool's {min(local_t):.1f} s: {per_run:+.2f} s a run")
        if args.only in (None, "report"):
            from r3lab.testing.mini_sweeps import write_mini_sweep

            big = write_mini_sweep(
                tmp / "big", values=[round(i / 100, 2) for i in range(100)], seeds=(0, 1, 2), questions=100
            )
            rep, cpu, loads = [], [], [os.getloadavg()[0]]
            for _ in range(args.rounds):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                rep.append(round(_r3lab("report", "sweep", big), 2))
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2))
                loads.append(os.getloadavg()[0])
            out["report"] = {
                "points": 100,
                "seeds": 3,
                "questions": 100,
                "metrics": 4,
                "seconds": rep,
                "cpu_seconds": cpu,
                "best": min(rep),
                "load_average_1min": [round(v, 2) for v in loads],
                "target": "<= 10",
            }
            print(f"report: 100 points x 3 seeds in {min(rep):.1f} s ({min(cpu):.1f} s of CPU)")
        out["machine"]["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = ROOT / "benchmarks" / "results" / "sweep.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, **out}, indent=2) + "\n")  # --only: the other parts' numbers kept
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
