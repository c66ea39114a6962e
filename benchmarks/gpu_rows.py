"""gpu_check's rows at each published shape (`--sections shapes`): the engine's exactness on both decode paths, a group
of 8 with 2 crops end to end, SFT and R-GRPO steps with peak memory, attention capture, the patch embedding, nccl.
`gpu_check.py` says what each checks; a row returns a dict whose `ok` says whether it passed."""

from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import replace

import gpu_engine
import torch

from r3lab.core.batch import collate, model_inputs
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig, RolloutSettings
from r3lab.engine.costs import compare
from r3lab.engine.environment import crop_script
from r3lab.engine.rollouts import rollout
from r3lab.model.adapters import LoRAConfig
from r3lab.testing import toy_image, toy_samples

SHAPES = ("qwen2.5-vl-3b", "qwen3-vl-2b", "smolvlm-256m")
SMOKE = ("qwen2_5_vl", "smolvlm")
GIB = 2**30


def make_policy(name: str, device, dtype, smoke: bool):
    if smoke:
        from r3lab.model.tiny import TinyConfig, build_tiny

        p = build_tiny(TinyConfig(seed=3), family=name)
        p.model.to(device=device, dtype=dtype)
        return p
    from r3lab.model.real import real_policy

    return real_policy(name, device=device, dtype=dtype)


def free():
    """Return memory the caller has dropped (`del` its names first: a model's reference cycles need gc)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_reset(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak(device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GIB


def samples_for(policy, n=2):
    size = (1000, 760) if policy.position_dims == 1 and policy.patch_size >= 512 else (448, 336)
    return [Sample(toy_image(size, k), "What colour is the disc?", ["red"], sample_id=f"g{k}") for k in range(n)]


def exactness(policy, samples, fp32: bool, path: str = "eager", keep: dict | None = None) -> dict:
    """Incremental logits (2 crops kept in the cache) vs one full forward over the finished trajectory; `keep`
    holds each path's logits, so the graphed path's are also compared with the eager path's."""
    frame = samples[0].prompt(policy.view, policy.prompt).frame
    script = crop_script(frame, 2, style=policy.prompt.calls)
    rec, stats = [], {}
    (traj,) = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=200, max_segment_tokens=120, **gpu_engine.PATHS[path]),
        group_size=1,
        scripts=[script],
        progress=False,
        stats=stats,
        logits_hook=lambda ids, lg: rec.append(lg[0].float().clone()),
    )
    b = collate([traj], policy)
    with torch.no_grad():
        full = policy.model(**model_inputs(b)).logits[0].float()
    idx = b["loss_mask"][0].nonzero().squeeze(-1)
    full, inc = full[idx - 1], torch.stack(rec)
    diff = (inc - full).abs()
    out = dict(
        crops=len(traj.crops),
        tokens=len(traj.input_ids()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        max_logit=float(full.abs().max()),
        argmax_agreement=float((inc.argmax(-1) == full.argmax(-1)).float().mean()),
        path=path,
        replays=stats["replays"],
        graphs=stats["graphs"],
    )
    # the graphed path counts only when its steps were replayed graphs (an eager fallback would pass for them)
    replayed = path == "eager" or gpu_engine.graphs_ok(stats)
    if keep is not None:
        keep[path] = inc
        other = keep.get("eager")
        if path != "eager" and other is not None and other.shape == inc.shape:
            out["vs_eager_max_abs_diff"] = float((inc - other).abs().max())
            out["vs_eager_argmax_agreement"] = float((inc.argmax(-1) == other.argmax(-1)).float().mean())
    if fp32:
        out["ok"] = (
            replayed and out["crops"] == 2 and out["max_abs_diff"] < (1e-4 if policy.device.type == "cpu" else 1e-3)
        )
        out["tolerance"] = "fp32: max |diff| < 1e-3 (1e-4 on CPU)"
        return out
    # bf16: two orderings of the same sums round differently, and random weights give near-tied logits, so the
    # two bf16 paths are judged against the fp32 logits of the same weights: the cache path must be no further
    # from them than the full bf16 forward is (a wrong position or a stale cache would be far further)
    dtype = next(policy.model.parameters()).dtype
    policy.model.float()
    try:
        with torch.no_grad():
            truth = policy.model(**model_inputs(b)).logits[0].float()[idx - 1]
    finally:
        policy.model.to(dtype)
    top = truth.argmax(-1)
    out.update(
        inc_vs_fp32_mean=float((inc - truth).abs().mean()),
        full_vs_fp32_mean=float((full - truth).abs().mean()),
        inc_argmax_vs_fp32=float((inc.argmax(-1) == top).float().mean()),
        full_argmax_vs_fp32=float((full.argmax(-1) == top).float().mean()),
    )
    out["ok"] = (
        replayed
        and out["crops"] == 2
        and out["max_abs_diff"] <= 0.05 * out["max_logit"]
        and out["inc_vs_fp32_mean"] <= 1.5 * out["full_vs_fp32_mean"] + 1e-6
        and out["inc_argmax_vs_fp32"] >= out["full_argmax_vs_fp32"] - 0.05
    )
    out["tolerance"] = (
        "bf16: max |diff| <= 5 % of max |logit|; against the fp32 logits of the same weights, the "
        "cache path's mean |error| <= 1.5 x the full bf16 forward's and its argmax agreement at most "
        "5 points lower"
    )
    return out


def rollouts(policy, samples, group: int, repeats: int) -> dict:
    frame = samples[0].prompt(policy.view, policy.prompt).frame
    scripts = [crop_script(frame, 2, style=policy.prompt.calls)]
    base = RolloutConfig(greedy=True, max_new_tokens=200, max_segment_tokens=120, group_size=group, cache="dynamic")
    graphed = replace(base, **gpu_engine.PATHS["graphed"])
    variants = {
        "kv_reuse_batched": base,
        "reprefill_reference": replace(base, mode="reference"),
        "kv_reuse_one_at_a_time": replace(base, batch_rows=1),
        "graphed_batched": graphed,
    }
    rollout(policy, samples[:1], replace(base, group_size=1), scripts=scripts, progress=False)  # warm-up (kernels)
    first, second = {}, {}  # the graphed group's first rollout (buffers, captures, regrows) against its second
    t0 = time.perf_counter()
    rollout(policy, samples[:1], graphed, scripts=scripts, progress=False, stats=first)
    first["wall_s"] = time.perf_counter() - t0
    best = compare(policy, samples[:1], variants, repeats, scripts=scripts)
    rollout(policy, samples[:1], graphed, scripts=scripts, progress=False, stats=second)
    sec = {k: v[0] for k, v in best.items()}
    tokens = {k: [t.input_ids() for t in v[1]] for k, v in best.items()}
    timing = {}
    for path, cfg in (("eager", base), ("graphed", graphed)):  # the cost by part (synchronised: its own run)
        stats = {}
        rollout(policy, samples[:1], replace(cfg, timing=True), scripts=scripts, progress=False, stats=stats)
        timing[path] = stats["timing"]
    same = len({json.dumps(v) for v in tokens.values()}) == 1
    keys = ("captures", "regrows", "pools", "replays", "graphs", "seconds", "wall_s")
    return dict(
        group=group,
        seconds=sec,
        reprefill_over_kv=sec["reprefill_reference"] / sec["kv_reuse_batched"],
        one_at_a_time_over_batched=sec["kv_reuse_one_at_a_time"] / sec["kv_reuse_batched"],
        eager_over_graphed=sec["kv_reuse_batched"] / sec["graphed_batched"],
        same_tokens=same,
        timing=timing,
        graphed_first={k: first[k] for k in keys if k in first},
        graphed_second={k: second[k] for k in keys if k in second},
        target="graphed >= 8x eager (kv_reuse_batched) on the 3B shape",
        ok=same and gpu_engine.graphs_ok(second),
    )


def train_steps(name, device, dtype, smoke: bool) -> dict:
    from r3lab.train.config import RGRPOConfig, SFTConfig
    from r3lab.train.plan import PlanConfig, plan
    from r3lab.train.rgrpo import scripted_rollout
    from r3lab.train.rgrpo import train as rgrpo_train
    from r3lab.train.sft import train as sft_train

    out = {}
    for mode in ("full", "lora"):
        lora = LoRAConfig(r=16 if mode == "lora" else 0, alpha=32)
        policy = make_policy(name, device, dtype, smoke)
        samples = toy_samples(2, policy.view)
        ref = samples[0].reference(policy.view, policy.prompt).tokenize(policy)
        tokens, new = len(ref.input_ids()), int(ref.loss_mask().sum())
        image_tokens = sum(policy.image_token_count(g) for g in ref.grids())
        held = torch.cuda.memory_allocated() / GIB if device.type == "cuda" else None  # the model alone
        peak_reset(device)
        t0 = time.perf_counter()
        sft_train(
            policy,
            samples,
            SFTConfig(steps=1, batch_size=2, grad_accum=2, lr_lm=1e-5, lr_vision=1e-5, lr_merger=1e-5, lora=lora),
        )
        row = dict(tokens=tokens, held_gib=held, sft_seconds=time.perf_counter() - t0, sft_peak_gib=peak(device))
        del policy
        free()
        policy = make_policy(name, device, dtype, smoke)
        frame = samples[0].prompt(policy.view, policy.prompt).frame
        script = crop_script(frame, 1, style=policy.prompt.calls)
        peak_reset(device)
        t0 = time.perf_counter()
        settings = RolloutSettings(max_new_tokens=120, max_segment_tokens=100)
        log = rgrpo_train(
            policy,
            samples[:1],
            RGRPOConfig(steps=1, group_size=4, batch_size=4, micro_rows=1, rollout=settings, lora=lora),
            rollout_fn=scripted_rollout(lambda s, j, step, script=script: script),
        )
        row.update(
            rgrpo_seconds=time.perf_counter() - t0,
            rgrpo_peak_gib=peak(device),
            rgrpo_loss_finite=bool(torch.isfinite(torch.tensor(log.rows[-1]["loss"]))),
        )
        if not smoke:
            c = PlanConfig(
                policy=name,
                dtype="bfloat16",
                text_tokens=tokens - image_tokens,
                image_tokens=image_tokens,
                new_tokens=new,
                reserve=0.0,
                lora=LoRAConfig(r=16),
            )
            rows = {(r["stage"], r["mode"]): r for r in plan(c).rows if not r["checkpointing"]}
            row["sft_planned_gib"] = rows["SFT", mode]["total"] / GIB
        row["ok"] = row["rgrpo_loss_finite"]
        out[mode] = row
        del policy, log
        free()
    return out


def capture_memory(policy, samples) -> dict:
    from r3lab.explain.capture import capture_attention

    traj = rollout(
        policy,
        samples[:1],
        RolloutConfig(greedy=True, max_new_tokens=40),
        group_size=1,
        scripts=[crop_script(samples[0].prompt(policy.view, policy.prompt).frame, 1, style=policy.prompt.calls)],
        progress=False,
    )[0]
    kw = model_inputs(collate([traj], policy))
    dev = policy.device
    out = {"tokens": len(traj.input_ids())}
    peak_reset(dev)
    with torch.no_grad():
        policy.model(**kw)
    out["plain_peak_gib"] = peak(dev)
    peak_reset(dev)
    with capture_attention(policy, layers="all", queries="model") as cap:
        cap.forward(traj)
    out["capture_peak_gib"], out["capture_kept_mib"] = peak(dev), cap.maps.weights.numel() * 4 / 2**20
    tc = policy.model.config.get_text_config()
    eager_bytes = tc.num_hidden_layers * tc.num_attention_heads * out["tokens"] ** 2 * 2
    if dev.type == "cuda" and eager_bytes > 0.5 * torch.cuda.mem_get_info()[0]:
        out["eager"] = "skipped: output_attentions would need about %.1f GiB" % (eager_bytes / GIB)
    else:
        policy.model.set_attn_implementation("eager")
        try:
            peak_reset(dev)
            with torch.no_grad():
                policy.model(**kw, output_attentions=True)
            out["eager_peak_gib"] = peak(dev)
        finally:
            policy.model.set_attn_implementation("sdpa")
    out["ok"] = True
    return out


def patch_embed(policy, n_patches: int, repeats: int) -> dict:
    """`PatchConv3d` (what every Policy uses) against the stock `Conv3d`: outputs, gradients, forward+backward time."""
    import copy

    from r3lab.model.patch_linear import PatchConv3d

    mods = [m for m in policy.model.modules() if type(m) is PatchConv3d]
    if not mods:
        return {"ok": True, "skipped": "no patch-wise Conv3d in this family"}
    lin = mods[0]
    conv = copy.deepcopy(lin)
    conv.__class__ = torch.nn.Conv3d
    w = lin.weight
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(n_patches, lin.in_channels, *lin.kernel_size, generator=g).to(w.device, w.dtype)

    def step(m):
        for p in m.parameters():
            p.grad = None
        xi = x.detach().requires_grad_(True)
        y = m(xi)
        y.float().square().mean().backward()
        return y.detach(), xi.grad, m.weight.grad

    def timed(m):
        step(m)  # warm-up (cuDNN picks its algorithm)
        ts = []
        for _ in range(repeats):
            if w.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(m)
            if w.device.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2] * 1e3

    (y1, gx1, gw1), (y0, gx0, gw0) = step(lin), step(conv)

    def rel(a, b):
        return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()

    out = {
        "patches": n_patches,
        "dtype": str(w.dtype).replace("torch.", ""),
        "out_rel_diff": rel(y1, y0),
        "grad_input_rel_diff": rel(gx1, gx0),
        "grad_weight_rel_diff": rel(gw1, gw0),
    }
    out["conv_ms"], out["linear_ms"] = timed(conv), timed(lin)
    out["linear_over_conv"] = out["linear_ms"] / out["conv_ms"]
    tol = 2e-2 if w.dtype in (torch.bfloat16, torch.float16) else 1e-4
    out["tolerance"] = f"max |diff| / max |stock| <= {tol} for the output and both gradients"
    out["ok"] = max(out["out_rel_diff"], out["grad_input_rel_diff"], out["grad_weight_rel_diff"]) <= tol
    return out


def _nccl_worker(rank: int, world: int, port: int, q):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    try:
        from r3lab.model.tiny import build_tiny
        from r3lab.train import dist
        from r3lab.train.config import SFTConfig
        from r3lab.train.sft import train

        dist.init("nccl")
        x = torch.ones(1, device=dist.device()) * (rank + 1)
        torch.distributed.all_reduce(x)
        p = build_tiny()
        p.model.to(dist.device())
        log = train(p, toy_samples(4, p.view), SFTConfig(steps=1, batch_size=4))
        q.put((rank, float(x), float(log.rows[-1]["loss"])))
        dist.shutdown()
    except Exception as e:  # reported by the parent
        q.put((rank, "error", repr(e)))


def nccl() -> dict:
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return {"skipped": f"{n} GPU(s): the two-process nccl test needs two"}
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_nccl_worker, args=(r, 2, 29517, q)) for r in range(2)]
    for p in procs:
        p.start()
    res = sorted(q.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(60)
    ok = all(r[1] == 3.0 for r in res) and res[0][2] == res[1][2]
    return {"ranks": res, "ok": ok}
