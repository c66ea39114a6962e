"""What the rollout engine buys, measured side by side in one run on one model, prompts and seeds.

    python benchmarks/rollout.py [--quick] [--threads 1] [--device cpu] [--dtype float32] [--model r3-small]
                                 [--calls absolute-json] [--parts abcde]

On a GPU: `--device cuda --dtype bfloat16 --model 3b-shape` (Qwen2.5-VL-3B's shape, random weights), or a
Qwen3-VL shape: `--model qwen3-vl-2b-shape` / `qwen3-vl-4b-shape --calls relative-tool` (patch 16, DeepStack at
vision blocks 5/11/17, interleaved M-RoPE [24, 20, 20]; the 4B shape uses 20 query heads of 128 where the
release has 32, as TinyConfig ties head_dim to hidden / heads). On a CPU: `--model qwen3-vl-small`.

(a) KV reuse vs full re-prefill: one scripted trajectory with 1, 2, 3, 5 crops, the engine
    (`mode="batched"`, one row: crops appended to the cache) against the official loop
    (`mode="reference"`: the whole context and every image re-processed after each crop), for
    224- and 448-px main images. The script forces every token (short segments, as the released
    model writes: "look once, zoom once, answer"), so both modes do the same work and their
    tokens are checked equal.
(b) one GRPO group, G=8, decoded as one batch vs one trajectory at a time (both with KV reuse).
(c) the whole engine (4 prompts x G=8 in one batch) vs the reference mode.
(d) what finished rows cost: dropped + cache compaction vs dropped only vs kept as pads (time, and
    machine-independent work: cache slots computed and slots attended over).
(e) the cache kinds (`RolloutConfig.cache`): today's growing cache vs the static one written in place
    (and, on CUDA, its decode step replayed as a CUDA graph), for the main model and default r3-tiny: one
    group (G=8) and 4 prompts x G=8, the same tokens checked; then each kind's cost broken down
    (`RolloutConfig.timing`: vision encoding, prefill, each crop's prefill, decode, sampling, host work).
(h) host work per decode step, each cache kind, 8 and 64 rows (benchmarks/host_work.py): host <-> device
    transfers per step (and how many wait), and host milliseconds per step (the step's wall and CPU time less
    the model's forward: on a GPU, the time the GPU waits between two steps), beside the decode step's own time.

Compared variants run round-robin (best of N each), so drifts in the load of a shared machine
hit them alike. Targets: (a) >= 2x at 3 crops, 448 px; (b) >= 2.5x throughput; (c) >= 4x.
(a) is reported for the default r3-tiny too. The main model is "r3-small" (text 6x384, vision
6x192, ~12 M parameters) with 224/448-px views: on default r3-tiny (0.6 M parameters) a decode
step is pure Python/dispatch overhead, so a re-prefill costs little more than a few decode steps
and (a) shows little. Default threads = 1: on a shared 2-core box OpenMP barriers with 2 threads
cost milliseconds per op. Prints ratios and tokens/s; writes benchmarks/results/rollout.json.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from pathlib import Path

import torch

from r3lab.core.crop_calls import CallStyle, format_crop_call
from r3lab.core.prompt import PromptConfig
from r3lab.core.regions import Frame, ViewConfig
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.costs import compare, model_tokens, reprefill_curve, warm_up
from r3lab.engine.rollouts import rollout
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

SMALL = TinyConfig(
    hidden=384,
    layers=6,
    heads=6,
    kv_heads=2,
    intermediate=1024,
    vision_hidden=192,
    vision_depth=6,
    vision_heads=6,
    vision_intermediate=512,
)
# Qwen2.5-VL-3B's shape (random weights, r3-tiny's 1k-token vocabulary): for a GPU run with --model 3b-shape
QWEN_3B = TinyConfig(
    hidden=2048,
    layers=36,
    heads=16,
    kv_heads=2,
    intermediate=11008,
    vision_hidden=1280,
    vision_depth=32,
    vision_heads=16,
    vision_intermediate=3420,
)
# Qwen3-VL shapes (random weights): the vision tower of Qwen3-VL-2B/4B, their language models (see the docstring)
QWEN3_VISION = dict(
    vision_hidden=1024,
    vision_depth=24,
    vision_heads=16,
    vision_intermediate=4096,
    patch_size=16,
    family="qwen3_vl",
    deepstack=(5, 11, 17),
)
QWEN3_2B = TinyConfig(hidden=2048, layers=28, heads=16, kv_heads=8, intermediate=6144, **QWEN3_VISION)
QWEN3_4B = TinyConfig(hidden=2560, layers=36, heads=20, kv_heads=4, intermediate=9728, **QWEN3_VISION)
QWEN3_SMALL = replace(SMALL, family="qwen3_vl", patch_size=16, deepstack=(1, 3, 5))  # r3-small's widths, CPU-sized
MODELS = {
    "r3-small": SMALL,
    "3b-shape": QWEN_3B,
    "qwen3-vl-small": QWEN3_SMALL,
    "qwen3-vl-2b-shape": QWEN3_2B,
    "qwen3-vl-4b-shape": QWEN3_4B,
}
SEGMENT = " I look at the red disc and its small mark"  # about 10 tokens of reasoning per segment
OUT = Path(__file__).resolve().parent / "results" / "rollout.json"


def view_for(px: int) -> ViewConfig:
    return ViewConfig(min_pixels=56 * 56, max_pixels=px * px, crop_min_pixels=56 * 56, crop_max_pixels=224 * 224)


def boxes(frame: Frame, n: int) -> list[tuple[int, int, int, int]]:
    """n different boxes, each a quarter of the model-input view."""
    W, H = frame.input_w, frame.input_h
    return [(int(W * (0.05 * i)), int(H * 0.1), int(W * (0.05 * i + 0.5)), int(H * 0.6)) for i in range(n)]


def group_scripts(frame: Frame, G: int, style: CallStyle = CallStyle()) -> list[list[str] | None]:
    """G rows that crop at different steps, refuse a call, finish early or just sample."""
    b = boxes(frame, 3)
    call = lambda box: " " + format_crop_call(box, style, frame)  # noqa: E731
    kinds = [
        ["<think>", call(b[0])],
        ["<think>" + SEGMENT, call(b[1]), SEGMENT, call(b[2])],
        None,
        ["<think> look", call((9, 9, 9, 9))],  # zero area: refused with a note
        ["<answer>red</answer><|im_end|>"],
        ["<think>" + SEGMENT * 2, call(b[2])],
        None,
        ["<think>" + SEGMENT, call(b[0]), "<answer>red</answer><|im_end|>"],
    ]
    return [kinds[i % len(kinds)] for i in range(G)]


def with_(cfg: RolloutConfig, **kw) -> RolloutConfig:
    return RolloutConfig(**{**cfg.__dict__, **kw})


def part_a(tc: TinyConfig, sizes, crops, repeats, device, dtype, style: CallStyle = CallStyle()) -> list[dict]:
    rows = []
    image = toy_image((448, 448))
    for px in sizes:
        policy = build_tiny(tc, view=view_for(px), prompt=PromptConfig(calls=style))
        policy.model.to(device=device, dtype=dtype)
        for row in reprefill_curve(policy, Sample(image, "What colour is the disc?", ["red"]), crops, repeats, SEGMENT):
            rows.append(row)
            print(
                f"  (a) {px:3d} px  {row['crops']} crops  {row['context_tokens']:5d} ctx tokens  reuse "
                f"{row['reuse_s']:7.3f}s  re-prefill {row['reprefill_s']:7.3f}s  x{row['speedup']:.2f}",
                flush=True,
            )
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes, crops and repeats (a smoke run)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (see the docstring)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", help="float32 | bfloat16")
    ap.add_argument("--model", default="r3-small", choices=sorted(MODELS), help="main model (3b-shape: GPU only)")
    ap.add_argument("--px", type=int, default=448, help="main-image view side for (b), (c), (d)")
    ap.add_argument(
        "--calls",
        default="absolute-json",
        help="crop-call style COORDS-GRAMMAR: absolute|relative, "
        "json|tool (relative-tool: Qwen3-VL's own image_zoom_in_tool in 0-1000)",
    )
    ap.add_argument("--parts", default="abcdeh", help="which parts to run (e.g. `e`: the cache kinds only)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    style = CallStyle(*args.calls.split("-", 1))
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    quick = args.quick
    repeats = 1 if quick else 3
    sizes, crops = ((224,), (1, 3)) if quick else ((224, 448), (1, 2, 3, 5))
    res = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "device": args.device,
            "dtype": args.dtype,
            "cpu": platform.processor() or platform.machine(),
        },
        "model": {args.model: MODELS[args.model].__dict__},
        "quick": quick,
        "calls": style.to_dict(),
        "targets": {"a_speedup_3crops_448": 2.0, "b_group_throughput": 2.5, "c_engine_vs_reference": 4.0},
    }

    main_cfg = MODELS[args.model]
    if "a" in args.parts:
        print(f"(a) KV reuse vs full re-prefill, {args.model}", flush=True)
        res["a"] = part_a(main_cfg, sizes, crops, repeats, args.device, dtype, style)
        print("(a) the same on default r3-tiny", flush=True)
        res["a_tiny"] = part_a(TinyConfig(), sizes, crops, repeats + 2, args.device, dtype)

    px = 224 if quick else args.px
    policy = build_tiny(main_cfg, view=view_for(px), prompt=PromptConfig(calls=style))
    policy.model.to(device=args.device, dtype=dtype)
    images = [toy_image((448, 448), s) for s in range(4)]
    samples = [
        Sample(im, q, ["red"], sample_id=f"p{i}")
        for i, (im, q) in enumerate(
            zip(
                images,
                [
                    "What colour is the disc?",
                    "Which shape is blue?",
                    "What is in the corner?",
                    "What colour is the mark?",
                ],
            )
        )
    ]
    frame = Frame.of(images[0].size, policy.view)
    warm_up(policy, samples[0])
    repeats = 1 if quick else 2
    G, budget = 8, 48 if quick else 96
    sampling = RolloutConfig(max_crops=3, temperature=1.0, max_new_tokens=budget, max_segment_tokens=budget, seed=0)
    scripts = group_scripts(frame, G, style)
    if "h" in args.parts:
        res["h"] = part_h(policy, samples[0], 24 if quick else 48)
    if "e" in args.parts:
        res["e"] = {}
        for name, tc in ((args.model, main_cfg), ("r3-tiny", TinyConfig())):
            pol = policy if tc is main_cfg else build_tiny(tc, view=view_for(px), prompt=PromptConfig(calls=style))
            pol.model.to(device=args.device, dtype=dtype)
            res["e"][name] = part_e(pol, samples, sampling, scripts, 2 if quick else 4, repeats + 1, name)
    if not set(args.parts) & set("bcd"):
        return _finish(res, args.out)

    r = compare(
        policy,
        samples[:1],
        {"batched": sampling, "single": with_(sampling, batch_rows=1)},
        repeats + 1,
        group_size=G,
        scripts=scripts,
    )
    (t_b, out_b, _), (t_1, out_1, _) = r["batched"], r["single"]
    tb, t1 = model_tokens(out_b) / t_b, model_tokens(out_1) / t_1
    res["b"] = {
        "px": px,
        "G": G,
        "batched_s": round(t_b, 3),
        "one_at_a_time_s": round(t_1, 3),
        "batched_tok_s": round(tb, 1),
        "one_at_a_time_tok_s": round(t1, 1),
        "throughput_ratio": round(tb / t1, 2),
    }
    print(f"(b) G={G} batched {tb:8.1f} tok/s  one at a time {t1:8.1f} tok/s  x{tb / t1:.2f}", flush=True)

    n_prompts = 2 if quick else 4
    scripts = scripts * n_prompts  # per row
    r = compare(
        policy,
        samples[:n_prompts],
        {"engine": sampling, "reference": with_(sampling, mode="reference")},
        repeats,
        group_size=G,
        scripts=scripts,
    )
    (t_e, out_e, _), (t_r, out_r, _) = r["engine"], r["reference"]
    te, tr = model_tokens(out_e) / t_e, model_tokens(out_r) / t_r
    res["c"] = {
        "px": px,
        "rows": n_prompts * G,
        "engine_s": round(t_e, 3),
        "reference_s": round(t_r, 3),
        "engine_tok_s": round(te, 1),
        "reference_tok_s": round(tr, 1),
        "throughput_ratio": round(te / tr, 2),
        "crops": sum(len(t.crops) for t in out_e),
    }
    print(f"(c) {n_prompts}x{G} rows: engine {te:8.1f} tok/s  reference {tr:8.1f} tok/s  x{te / tr:.2f}", flush=True)

    res["d"] = {}
    variants = {
        "drop+compact": sampling,
        "drop+compact-always": with_(sampling, compact_holes=0.0),
        "drop": with_(sampling, compact_holes=1.0),
        "keep": with_(sampling, drop_finished=False),
    }
    for name, (t_d, out_d, work) in compare(
        policy, samples[:n_prompts], variants, repeats + 1, group_size=G, scripts=scripts
    ).items():
        res["d"][name] = {"s": round(t_d, 3), "tok_s": round(model_tokens(out_d) / t_d, 1), **work}
        print(
            f"(d) finished rows {name:20s} {t_d:7.3f}s  slots computed {work['slots']:7d}  "
            f"slots attended {work['kv_reads']:10d}  compactions {work['compactions']}",
            flush=True,
        )

    a3 = [r for r in res.get("a", []) if r["crops"] == 3]
    res["summary"] = {
        "a_speedup_3crops_largest_px": a3[-1]["speedup"] if a3 else None,
        "b_group_throughput": res["b"]["throughput_ratio"],
        "c_engine_vs_reference": res["c"]["throughput_ratio"],
    }
    return _finish(res, args.out)


def _finish(res: dict, out: Path) -> dict:
    if "e" in res:
        res.setdefault("summary", {}).update(
            {
                f"e_static_over_dynamic/{m}/{k}": v["static_over_dynamic"]
                for m, rows in res["e"].items()
                for k, v in rows.items()
                if k != "timing"
            }
        )
    print("summary:", json.dumps(res.get("summary")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")
    return res


def part_h(policy, sample, tokens: int) -> dict:
    """Host work per decode step (host_work.measure) beside the decode step's time (`timing`), each cache kind."""
    import host_work

    out = {}
    for cache in ("static", "dynamic"):
        for rows in (8, 64):
            cfg = RolloutConfig(max_crops=0, max_new_tokens=tokens, max_segment_tokens=tokens, greedy=True, cache=cache)
            script = [" a" * (tokens + 8)]
            d = host_work.measure(policy, [sample], cfg, script, rows)["decode"]
            stats = {}
            rollout(
                policy, [sample], with_(cfg, timing=True), group_size=rows, scripts=script, progress=False, stats=stats
            )
            t = stats["timing"]
            row = {
                k: d[k] for k in ("transfers_per_step", "syncs_per_step", "host_ms_per_step", "host_cpu_ms_per_step")
            }
            row["decode_ms_per_step"] = round(1e3 * t["decode_s"] / max(1, t["counts"].get("decode", 0)), 3)
            out[f"{cache}/b{rows}"] = row
            print(
                f"(h) {cache:8s} {rows:3d} rows: transfers/step {row['transfers_per_step']} (waits "
                f"{row['syncs_per_step']}), host ms/step {row['host_ms_per_step']} (CPU "
                f"{row['host_cpu_ms_per_step']}), decode step {row['decode_ms_per_step']} ms",
                flush=True,
            )
    return out


def part_e(policy, samples, sampling: RolloutConfig, scripts, n_prompts: int, repeats: int, name: str) -> dict:
    """The cache kinds side by side (round-robin, best of `repeats`), the same tokens; then each one's cost by part."""
    cuda = policy.device.type == "cuda"
    kinds = {"dynamic": with_(sampling, cache="dynamic"), "static": with_(sampling, cache="static", cuda_graphs=False)}
    if cuda:
        kinds["static+graphs"] = with_(sampling, cache="static", cuda_graphs=True)
    out = {}
    for label, prompts, per_row in (
        ("group", samples[:1], scripts),
        (f"{n_prompts}x8", samples[:n_prompts], scripts * n_prompts),
    ):
        for cfg in kinds.values():  # warm-up: first calls, the static buffers and (CUDA) the captured steps
            compare(policy, prompts, {"w": cfg}, 1, group_size=8, scripts=per_row)
        r = compare(policy, prompts, kinds, repeats, group_size=8, scripts=per_row)
        tokens = {k: [t.input_ids() for t in v[1]] for k, v in r.items()}
        row = {k: {"s": round(v[0], 4), "tok_s": round(model_tokens(v[1]) / v[0], 1)} for k, v in r.items()}
        row["same_tokens"] = len({json.dumps(v) for v in tokens.values()}) == 1
        best = min(v[0] for k, v in r.items() if k != "dynamic")
        row["static_over_dynamic"] = round(r["dynamic"][0] / best, 3)  # > 1: the static kind is faster
        out[label] = row
        print(
            f"(e) {name:14s} {label:5s} "
            + "  ".join(f"{k} {v['s']:.3f}s" for k, v in row.items() if isinstance(v, dict))
            + f"  dynamic/static x{row['static_over_dynamic']:.2f}  same tokens {row['same_tokens']}",
            flush=True,
        )
    out["timing"] = {}
    for k, cfg in kinds.items():
        stats = {}
        rollout(
            policy,
            samples[:n_prompts],
            with_(cfg, timing=True),
            group_size=8,
            scripts=scripts * n_prompts,
            stats=stats,
            progress=False,
        )
        t = stats["timing"]
        out["timing"][k] = t
        print(
            f"(e) {name:14s} cost of {n_prompts}x8 ({k}): "
            + "  ".join(f"{p[:-2]} {v:.3f}" for p, v in t.items() if p.endswith("_s"))
            + f"  crop steps {len(t['crops'])}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
