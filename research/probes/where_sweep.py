"""Run several localisation probes side by side (one process each) and print their final numbers.

    python benchmarks/where_sweep.py SWEEP.json --out runs/sweep [--parallel 2] [--device cpu] [--time-limit 900]

SWEEP.json is a list of objects: {"name": ..., <ProbeConfig fields>}. Each probe writes
OUT/<name>.json (its log and evaluations) and OUT/<name>.log. One thread per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run_one(spec: dict) -> None:
    from where_probe import ProbeConfig, probe_where

    name = spec.pop("name")
    probe_where(ProbeConfig(**spec), log=lambda s: print(s, flush=True))
    print(f"DONE {name}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep")
    ap.add_argument("--out", required=True)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--time-limit", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=None, help="data-loader workers per probe (default: keep)")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        run_one(json.loads(args.one))
        return 0
    specs = json.loads(Path(args.sweep).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    queue = list(specs)
    running: list[tuple[str, subprocess.Popen]] = []
    while queue or running:
        while queue and len(running) < args.parallel:
            spec = dict(queue.pop(0))
            spec.setdefault("device", args.device)
            if args.time_limit:
                spec.setdefault("time_limit", args.time_limit)
            if args.workers is not None:
                spec["workers"] = args.workers
            spec["out"] = str(out / f"{spec['name']}.json")
            log = open(out / f"{spec['name']}.log", "w")
            cmd = [sys.executable, __file__, args.sweep, "--out", args.out, "--one", json.dumps(spec)]
            running.append((spec["name"], subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
        time.sleep(2)
        running = [(n, p) for n, p in running if p.poll() is None]
    for spec in specs:
        path = out / f"{spec['name']}.json"
        if not path.is_file():
            print(f"{spec['name']}: no result (see {out / spec['name']}.log)")
            continue
        rec = json.loads(path.read_text())
        for ev in rec["evals"]:
            print(spec["name"], json.dumps({k: v for k, v in ev.items() if k not in ("examples", "texts")}))
        if rec["evals"]:
            print("   ", rec["evals"][-1]["examples"][:2], rec["chance"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
