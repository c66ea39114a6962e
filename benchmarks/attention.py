"""What attention capture costs: capture vs a plain SDPA forward vs eager `output_attentions=True`.

    python benchmarks/attention.py [--lengths 500 1000 2000] [--repeats 3]

One teacher-forced forward over a finished trajectory (main image + one crop + text) of a larger
r3-tiny (text 4 layers x 256, 8 heads over 4 KV heads; vision 2 x 64) at about 500, 1,000 and 2,000
tokens. Modes:
  plain    SDPA, no capture
  capture      `capture_attention(layers=[-1], queries=<model_text tokens>)`: the last layer, every head,
               the model_text tokens' attention to all image tokens (what `explain_crops` reads by default)
  capture_all  the same for every layer
  eager    eager attention + `output_attentions=True` (every layer's full L x L)
All modes run the model on the same collated inputs. Time: one process per length runs the modes in
turn for `--repeats` rounds after a warm-up (paired, so a busy machine slows all alike) and reports the
best round (the median too); the capture context is entered anew each time (registration, hooks and
switching back included).
Memory: each (mode, length) runs in a fresh subprocess with MALLOC_MMAP_THRESHOLD_=65536 (large
blocks come from mmap and go back to the OS when freed, so RSS tracks live tensors); a thread samples
RSS every 0.5 ms during one forward and we report the peak above the RSS just before it (tracemalloc
cannot see torch's allocations). "kept" is the exact size of what each mode hands back.
Targets at 2,000 tokens: capture time <= 1.5x plain, capture peak <= 5 % of eager's. Also reported:
"extra peak" (peak minus the plain forward's peak) against eager's extra, and the kept bytes.
Writes benchmarks/results/attention.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

MODES = ("plain", "capture", "capture_all", "eager")
MAIN_SIDE = {500: 476, 1000: 812, 2000: 1204}  # main image side (px) giving about that many tokens


def _setup(length: int):
    import torch

    from r3lab.core.batch import collate, model_inputs
    from r3lab.core.regions import ViewConfig
    from r3lab.model.tiny import TinyConfig, build_tiny
    from r3lab.testing import toy_trajectory

    torch.set_num_threads(2)
    side = MAIN_SIDE.get(length) or 28 * round((length * 0.8) ** 0.5)
    view = ViewConfig(max_pixels=side * side, crop_max_pixels=224 * 224)
    cfg = TinyConfig(hidden=256, layers=4, heads=8, kv_heads=4, intermediate=512, seed=0)
    policy = build_tiny(cfg, view=view)
    traj = toy_trajectory(policy, size=(side, side))
    batch = collate([traj], policy)
    return policy, traj, model_inputs(batch)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_during(fn):
    base, peak, stop = _rss(), [0], [False]

    def sample():
        while not stop[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = fn()
    peak[0] = max(peak[0], _rss())
    stop[0] = True
    th.join()
    return out, peak[0] - base


def _runner(policy, traj, kw, queries, mode):
    """A zero-argument forward in `mode`; returns the bytes of attention it hands back."""
    import torch

    from r3lab.explain.capture import capture_attention

    model = policy.model

    def once():
        with torch.no_grad():
            if mode.startswith("capture"):
                layers = "all" if mode == "capture_all" else [-1]
                with capture_attention(policy, layers=layers, queries=queries) as cap:
                    model(**kw, use_cache=False)
                m = cap.maps
                return m.weights.numel() * 4 + m.sink.numel() * 4
            if mode == "eager":
                model.set_attn_implementation({"text_config": "eager"})
                try:
                    out = model(**kw, use_cache=False, output_attentions=True)
                finally:
                    model.set_attn_implementation({"text_config": "sdpa"})
                return sum(a.numel() * a.element_size() for a in out.attentions)
            model(**kw, use_cache=False)
            return 0

    return once


def worker(mode: str, length: int, repeats: int) -> dict:
    """mode "time": every mode in turn, `repeats` rounds (paired, so load on the machine hits all alike);
    any other mode: the peak RSS of one forward in a fresh process."""
    policy, traj, kw = _setup(length)
    queries = traj.loss_mask()  # the model_text tokens, what explain_crops reads
    info = {
        "tokens": len(traj.input_ids()),
        "image_tokens": sum(len(p.ids) - 2 for p in traj.image_pieces),
        "queries": int(queries.sum()),
    }
    if mode == "time":
        runs = {m: _runner(policy, traj, kw, queries, m) for m in MODES}
        times = {m: [] for m in MODES}
        for m in MODES:
            runs[m]()  # warm-up
        for _ in range(repeats):
            for m in MODES:
                t0 = time.perf_counter()
                runs[m]()
                times[m].append(time.perf_counter() - t0)
        return dict(
            info,
            time_ms={m: round(min(v) * 1e3, 1) for m, v in times.items()},
            time_ms_median={m: round(statistics.median(v) * 1e3, 1) for m, v in times.items()},
        )
    once = _runner(policy, traj, kw, queries, mode)
    once()  # warm-up
    kept, peak = _peak_during(once)
    return dict(info, mode=mode, peak_mb=round(peak / 2**20, 2), kept_mb=round(kept / 2**20, 3))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[500, 1000, 2000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", nargs=2, metavar=("MODE", "LENGTH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.repeats)))
        return {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", TQDM_DISABLE="1")
    rows, timing = [], {}

    def run(mode, length):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", mode, str(length), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    for length in args.lengths:
        timing[length] = run("time", length)
        print(length, timing[length], flush=True)
        for mode in MODES:
            rows.append(dict(run(mode, length), length=length, time_ms=timing[length]["time_ms"][mode]))
            print(rows[-1], flush=True)
    summary = {}
    for length in args.lengths:
        r = {x["mode"]: x for x in rows if x["length"] == length}
        p, e = r["plain"], r["eager"]
        summary[str(length)] = {"tokens": p["tokens"], "eager_time_vs_plain": round(e["time_ms"] / p["time_ms"], 3)}
        for c in ("capture", "capture_all"):
            summary[str(length)].update(
                {
                    f"{c}_time_vs_plain": round(r[c]["time_ms"] / p["time_ms"], 3),
                    f"{c}_peak_vs_eager": round(r[c]["peak_mb"] / max(e["peak_mb"], 1e-9), 4),
                    f"{c}_extra_peak_vs_eager_extra": round(
                        (r[c]["peak_mb"] - p["peak_mb"]) / max(e["peak_mb"] - p["peak_mb"], 1e-9), 4
                    ),
                    f"{c}_kept_vs_eager": round(r[c]["kept_mb"] / max(e["kept_mb"], 1e-9), 5),
                }
            )
    top = summary.get(str(max(args.lengths)), {})
    res = {
        "rows": rows,
        "timing": {str(k): v for k, v in timing.items()},
        "summary": summary,
        "targets": {"capture_time_vs_plain": 1.5, "capture_peak_vs_eager": 0.05},
        "met": {
            c: {"time": top.get(f"{c}_time_vs_plain", 9) <= 1.5, "memory": top.get(f"{c}_peak_vs_eager", 9) <= 0.05}
            for c in ("capture", "capture_all")
        },
        "config": "text 4L x 256, 8 heads / 4 KV heads; vision 2L x 64; fp32; 2 threads; one crop",
    }
    out = Path(__file__).parent / "results" / "attention.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res["summary"], indent=2))
    return res


if __name__ == "__main__":
    main()
