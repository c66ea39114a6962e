"""gpu_check's first-run section (`--sections first`, about 4 minutes on one H200): the graphed decode at the shape
of Qwen2.5-VL-3B (random bf16 weights, `r3lab.model.real`), both decode paths.

  capture   a graphed rollout of 64 rows (`cuda_graphs=True`: a failure raises, its trace in the row): every
            (batch bucket, window) step it can reach captured before its first step, seconds per capture; its first
            decode step (sampling, the one copy back, the replay) under `torch.cuda.set_sync_debug_mode("error")`;
            memory before the pool, after its buffers and after the captures
  exactness incremental logits (2 crops kept in the cache) against one full forward, eager and graphed, and graphed
            against eager (gpu_rows.exactness); bf16, then fp32 when the section's time allows
  decode    ms per step (the step alone) and end to end per step and per token at batch 1 / 8 / 64, both paths, each
            step's parts, the pool against the live length (gpu_engine.decode_steps); ok only if graphs replayed
  profile   5 graphed decode steps at batch 8 and 64 under torch.profiler: GPU busy time per step, the idle gaps
            between replays (the host's share), the attention kernels and their share (chrome traces under --out's
            folder)
Targets (the review's, on the 3B shape): graphed decode <= 10 ms a step at batch 8 and 64, end to end included.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import gpu_engine
import gpu_rows
import torch

from r3lab.engine import graphs
from r3lab.engine.config import RolloutConfig
from r3lab.engine.pool import release_pool
from r3lab.engine.rollouts import _Engine, rollout

SHAPE = "qwen2.5-vl-3b"
TARGET_MS = 10.0


def _mem(device) -> dict:
    if device.type != "cuda":
        return {}
    torch.cuda.synchronize()
    return {
        "allocated_gib": round(torch.cuda.memory_allocated() / 2**30, 3),
        "reserved_gib": round(torch.cuda.memory_reserved() / 2**30, 3),
    }


@contextmanager
def first_step_sync_debug(record: dict):
    """The first decode step of the next rollout (its choice, the copy back, the replay) with implicit
    synchronisation an error; `record["first_step"]` says it ran."""
    choose, append = _Engine._choose, _Engine._append
    state = {"ctx": None, "done": False}

    def choose_(self, *a, **kw):
        if not state["done"] and state["ctx"] is None and self.static:
            state["ctx"] = graphs.sync_debug("error")
            state["ctx"].__enter__()
        return choose(self, *a, **kw)

    def append_(self, *a, **kw):
        try:
            return append(self, *a, **kw)
        finally:
            if state["ctx"] is not None and not state["done"]:
                state["ctx"].__exit__(None, None, None)
                state["done"] = record["first_step"] = True

    _Engine._choose, _Engine._append = choose_, append_
    try:
        yield
    finally:
        _Engine._choose, _Engine._append = choose, append
        if state["ctx"] is not None and not state["done"]:
            state["ctx"].__exit__(None, None, None)


def capture(policy, sample, rows: int, tokens: int) -> dict:
    """A fresh pool for `rows` rows, captured ahead, the first step under sync debug; memory at each stage."""
    dev = policy.device
    release_pool(policy)
    out = {"memory_before": _mem(dev), "first_step": False}
    cfg = RolloutConfig(
        greedy=True, max_crops=0, max_new_tokens=tokens, max_segment_tokens=tokens, **gpu_engine.PATHS["graphed"]
    )
    stats = {}
    with first_step_sync_debug(out):
        t0 = time.perf_counter()
        rollout(policy, [sample], cfg, group_size=rows, scripts=[" a" * (tokens + 8)], progress=False, stats=stats)
        out["seconds"] = round(time.perf_counter() - t0, 3)
    pool = stats["pool"]
    out.update(
        memory_after=_mem(dev),
        pool=pool,
        captures=stats["captures"],
        replays=stats["replays"],
        graphs=stats["graphs"],
        transfers=stats["transfers"],
        capture_s_each=round(pool["capture_s"] / max(1, stats["captures"]), 4),
    )
    out["ok"] = gpu_engine.graphs_ok(stats) and out["first_step"] and stats["captures"] > 0
    return out


def trace_summary(trace: dict, steps: int) -> dict:
    """GPU busy time and idle gaps from the first graph launch to the last kernel of a chrome trace, per step (per
    launch where there are launches); the attention kernels' share and names."""
    events = trace.get("traceEvents", trace) if isinstance(trace, dict) else trace
    launches = sorted(e["ts"] for e in events if e.get("name") == "cudaGraphLaunch" and "ts" in e)
    since = launches[0] if launches else float("-inf")  # the prompts' prefill and vision tower before it: left out
    kernels = sorted(
        (e["ts"], e["ts"] + e.get("dur", 0), e.get("name", ""))
        for e in events
        if e.get("cat") == "kernel" and "ts" in e and e["ts"] >= since
    )
    if not kernels:
        return {"kernels": 0, "graph_launches": len(launches), "note": "no GPU kernels in the trace (no CUDA here)"}
    steps = len(launches) or steps
    busy, start, end = 0.0, kernels[0][0], kernels[0][0]
    for a, b, _ in kernels:
        if b > end:
            busy += b - max(a, end)
            end = b
    span = end - start
    attn = [k for k in kernels if any(w in k[2].lower() for w in ("fmha", "attention", "attn", "cudnn", "flash"))]
    return {
        "kernels": len(kernels),
        "graph_launches": len(launches),
        "steps": steps,
        "span_ms": round(span / 1e3, 3),
        "busy_ms_per_step": round(busy / 1e3 / steps, 3),
        "idle_ms_per_step": round((span - busy) / 1e3 / steps, 3),
        "idle_share": round(1 - busy / span, 4) if span else None,
        "attention_share": round(sum(b - a for a, b, _ in attn) / max(busy, 1e-9), 4),
        "attention_kernels": sorted({k[2] for k in attn})[:6],
    }


def profile(policy, sample, rows: int, steps: int, out_dir: str) -> dict:
    """`steps` graphed decode steps of `rows` rows under torch.profiler (after a warm-up rollout of the same shape)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cfg = RolloutConfig(
        greedy=True, max_crops=0, max_new_tokens=steps + 1, max_segment_tokens=steps + 1, **gpu_engine.PATHS["graphed"]
    )
    script = [" a" * (steps + 8)]
    rollout(policy, [sample], cfg, group_size=rows, scripts=script, progress=False)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if policy.device.type == "cuda" else [])
    stats = {}
    with torch_profile(activities=acts) as prof:
        rollout(policy, [sample], cfg, group_size=rows, scripts=script, progress=False, stats=stats)
    path = Path(out_dir) / f"profile_b{rows}.json" if out_dir else Path("/tmp") / f"r3lab_profile_b{rows}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    out = trace_summary(json.loads(path.read_text()), steps)
    out.update(rows=rows, trace=str(path), replays=stats["replays"], graphs=stats["graphs"])
    if not out_dir:
        path.unlink(missing_ok=True)
    out["ok"] = gpu_engine.graphs_ok(stats)
    return out


def targets(res: dict) -> dict:
    """The targets beside the numbers: graphed <= 10 ms a step at batch 8 and 64, the step alone and end to end."""
    d = res.get("decode", {})
    out = {}
    for b in (8, 64):
        for kind, key in (("decode", f"graphed_b{b}_ms"), ("end_to_end", f"graphed_b{b}_step_ms")):
            if key in d:
                out[f"{kind}_b{b}_ms"] = {"value": d[key], "target": TARGET_MS, "met": d[key] <= TARGET_MS}
    return out


def first_run(run, res: dict, device, smoke: bool, out_dir: str, budget_s: float = 200.0) -> None:
    """The section's checks into `res` through `run` (gpu_check.run_section: each recorded, a failure with its trace);
    the fp32 rows only when less than `budget_s` has passed."""
    t0 = time.perf_counter()
    name = "qwen2_5_vl" if smoke else SHAPE
    t = time.perf_counter()
    policy = gpu_rows.make_policy(name, device, torch.bfloat16, smoke)
    res["build_s"] = round(time.perf_counter() - t, 2)
    res["memory_model"] = _mem(device)
    samples = gpu_rows.samples_for(policy)
    big, tokens = (4, 6) if smoke else (64, 24)
    run(res, "capture", capture, policy, samples[0], big, 8)
    incs = {}
    run(res, "exactness_bf16", gpu_rows.exactness, policy, samples, fp32=False, keep=incs)
    run(res, "graphed_bf16", gpu_rows.exactness, policy, samples, fp32=False, path="graphed", keep=incs)
    run(res, "decode", gpu_engine.decode_steps, policy, samples[0], (1, 2, big) if smoke else (1, 8, 64), tokens)
    for rows in (2, big) if smoke else (8, 64):
        run(res, f"profile_b{rows}", profile, policy, samples[0], rows, 5, out_dir)
    res["targets"] = targets(res)
    del policy, incs
    gpu_rows.free()
    if time.perf_counter() - t0 > budget_s:
        res["exactness_fp32"] = {"skipped": f"the section passed {budget_s:.0f} s before it"}
        return
    policy = gpu_rows.make_policy(name, device, torch.float32, smoke)
    incs = {}
    run(res, "exactness_fp32", gpu_rows.exactness, policy, gpu_rows.samples_for(policy), fp32=True, keep=incs)
    run(
        res,
        "graphed_fp32",
        gpu_rows.exactness,
        policy,
        gpu_rows.samples_for(policy),
        fp32=True,
        path="graphed",
        keep=incs,
    )
    del policy, incs
    gpu_rows.free()
