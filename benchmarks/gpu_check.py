"""One command that verifies a GPU: `bash benchmarks/gpu_check.sh [--sections first,...]` (no network, no weights).

Sections (`--sections NAME,...`; the default runs them in this order until `--budget` seconds have passed, a section
or row that would start later recorded as skipped; the whole default run, with the wheels installed, fits 8 minutes):
  first      the first-run section, about 4 minutes on one H200 (benchmarks/gpu_first.py): the graphed decode at
             Qwen2.5-VL-3B's shape (random bf16 weights): capture with the first step under sync-debug, exactness
             graphed vs eager (bf16, then fp32), ms per step and per token at batch 1 / 8 / 64 against the 10 ms
             target, memory before and after the pool and the captures, a 5-step profile of the idle gaps
  group      a group of 8 with 2 crops each at the 3B shape: KV reuse vs the official re-prefill loop, batched vs one
             at a time, eager vs graphed (target >= 8x, the same tokens), the graphed group's first rollout (buffers,
             captures, regrows) against its second; one R-GRPO step per path with the rollout-trainer mismatch
  shapes     at each of `--shapes` (default: the 3B, Qwen3-VL-2B and SmolVLM-256M shapes), benchmarks/gpu_rows.py:
             exactness (fp32: max |diff| < 1e-3; bf16: judged against the fp32 logits of the same weights) for both
             paths, ms per decode step, the group of 8, attention capture's peak memory, the patch embedding as
             F.linear vs Conv3d, an R-GRPO step per path, SFT and R-GRPO steps full and LoRA with peak memory next
             to `r3lab plan`
  eval_tiny  the shipped r3-tiny on the recipe's 150 held-out questions, both paths: seconds, the same answers
  nccl       two processes: nccl all_reduce and one DDP SFT step of r3-tiny, when two GPUs are present
Both decode paths (benchmarks/gpu_engine.py): "eager", the growing cache; "graphed", the static cache with each
decode step replayed as a CUDA graph, run with `cuda_graphs=True` so a failed capture raises into its row, and a
graphed row counts only when its graphs replayed. Writes `--out` (default benchmarks/results/gpu.json; the JSON so
far after each section) and, for `first`, the profiles' chrome traces beside it. `--smoke` runs the same code on
this CPU at r3-tiny sizes (Qwen2.5-VL and SmolVLM families; CUDA-graph capture stood in for by
`r3lab.testing.standin_graphs`; memory not measured): tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
import traceback
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_engine  # noqa: E402
import gpu_first  # noqa: E402
import gpu_rows  # noqa: E402
from gpu_rows import SHAPES, SMOKE, free, make_policy, samples_for  # noqa: E402

SECTIONS = ("first", "group", "shapes", "eval_tiny", "nccl")


def run_section(results: dict, key: str, fn, *a, deadline: float = float("inf"), **kw):
    t0 = time.perf_counter()
    if t0 > deadline:
        results[key] = {"skipped": "the time budget (--budget) ran out before it"}
        print(f"[gpu_check] {key}: skipped (time budget)", flush=True)
        return
    try:
        results[key] = fn(*a, **kw)
    except Exception as e:  # a failing check is recorded and the rest still run
        results[key] = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
    results[key]["seconds_total"] = time.perf_counter() - t0 if isinstance(results[key], dict) else None
    ok = results[key].get("ok", True)
    why = "" if ok else ": " + str(results[key].get("error") or results[key].get("why") or "a check failed")[:300]
    print(f"[gpu_check] {key}: {'ok' if ok else 'FAILED'} ({time.perf_counter() - t0:.1f} s){why}", flush=True)


def _write(results: dict, out: str, partial: bool) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(dict(results, partial=partial), indent=1))
        print(f"[gpu_check] wrote {out}{' (so far)' if partial else ''}", flush=True)


def group(run, res: dict, device, smoke: bool) -> None:
    """The group of 8 with 2 crops and an R-GRPO step per path, at the 3B shape."""
    policy = make_policy(SMOKE[0] if smoke else SHAPES[0], device, torch.bfloat16, smoke)
    samples = samples_for(policy)
    run(res, "rollouts_bf16", gpu_rows.rollouts, policy, samples, 2 if smoke else 8, 1)
    run(res, "rgrpo_bf16", gpu_engine.rgrpo_paths, policy, samples)
    del policy
    free()


def shape_rows(run, res: dict, name: str, device, smoke: bool, first: bool) -> None:
    """Every row at one shape (gpu_rows)."""
    policy = make_policy(name, device, torch.bfloat16, smoke)
    samples = samples_for(policy)
    incs = {}
    run(res, "exactness_bf16", gpu_rows.exactness, policy, samples, fp32=False, keep=incs)
    run(res, "graphed_bf16", gpu_rows.exactness, policy, samples, fp32=False, path="graphed", keep=incs)
    run(
        res,
        "decode_bf16",
        gpu_engine.decode_steps,
        policy,
        samples[0],
        (1, 2, 4) if smoke else (1, 8, 64),
        6 if smoke else 32,
    )
    run(res, "rollouts_bf16", gpu_rows.rollouts, policy, samples, 2 if smoke else 8, 1)
    run(res, "capture_bf16", gpu_rows.capture_memory, policy, samples)
    run(res, "patch_bf16", gpu_rows.patch_embed, policy, 64 if smoke else 16384, 3 if smoke else 20)
    run(res, "rgrpo_bf16", gpu_engine.rgrpo_paths, policy, samples)
    del policy, incs
    free()
    policy = make_policy(name, device, torch.float32, smoke)
    incs = {}
    run(res, "exactness_fp32", gpu_rows.exactness, policy, samples_for(policy), fp32=True, keep=incs)
    run(res, "graphed_fp32", gpu_rows.exactness, policy, samples_for(policy), fp32=True, path="graphed", keep=incs)
    del policy, incs
    free()
    if not smoke or first:  # the smoke run trains one family (tests/train covers the others)
        run(res, "train_bf16", gpu_rows.train_steps, name, device, torch.bfloat16, smoke)


def sections_arg(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if bad := [s for s in names if s not in SECTIONS]:
        raise argparse.ArgumentTypeError(f"unknown section(s) {bad}; known: {','.join(SECTIONS)}")
    return names


def failures(results: dict) -> list[str]:
    """Every row whose `ok` is False, as section/row (shapes: shape/row)."""
    bad = []
    for key, value in results.items():
        if not isinstance(value, dict):
            continue
        rows = value.items() if key in ("first", "group") else ([(key, value)] if "ok" in value else [])
        if key == "shapes":
            rows = [(f"{n}/{k}", v) for n, r in value.items() for k, v in r.items()]
        bad += [
            k if key == "shapes" or k == key else f"{key}/{k}"
            for k, v in rows
            if isinstance(v, dict) and not v.get("ok", True)
        ]
    return bad


def skipped(results: dict, at: str = "") -> list[str]:
    """Every section or row recorded as skipped (its path)."""
    out = []
    for k, v in results.items():
        if isinstance(v, dict):
            out += [at + k] if "skipped" in v else skipped(v, f"{at}{k}/")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, r3-tiny sizes, graphs stood in for (what the test runs)")
    ap.add_argument(
        "--sections",
        type=sections_arg,
        default=list(SECTIONS),
        help=f"comma-separated, of {','.join(SECTIONS)} (default: all, in that order, until --budget)",
    )
    ap.add_argument("--shapes", nargs="+", default=None, help=f"the shapes section's (default: {' '.join(SHAPES)})")
    ap.add_argument("--out", default="", help="JSON to write (default benchmarks/results/gpu.json; smoke: not written)")
    ap.add_argument(
        "--budget", type=float, default=360.0, help="seconds after which no section or row starts (not in smoke)"
    )
    args = ap.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU here. `bash benchmarks/gpu_check.sh --smoke` runs the same checks on this CPU "
            "at r3-tiny sizes.",
            file=sys.stderr,
        )
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 exactness check means fp32
        torch.backends.cudnn.allow_tf32 = False
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) < Version("5.20"):
        print(
            f"gpu_check: transformers {transformers.__version__} here; r3lab needs >= 5.20. Run `bash "
            "benchmarks/gpu_wheels.sh` where pip reaches its index and carry .whl: gpu_check.sh installs it first.",
            file=sys.stderr,
        )
        return 2
    results = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "smoke": args.smoke,
        "sections": args.sections,
    }
    out = args.out or ("" if args.smoke else str(ROOT / "benchmarks" / "results" / "gpu.json"))
    t_all = time.perf_counter()
    deadline = float("inf") if args.smoke else t_all + args.budget
    run = partial(run_section, deadline=deadline)
    smoke = args.smoke
    with _standin(smoke):
        for section in args.sections:
            if time.perf_counter() > deadline:
                results[section] = {"skipped": "the time budget (--budget) ran out before it"}
                continue
            if section == "first":
                res = results.setdefault("first", {})
                try:
                    gpu_first.first_run(run, res, device, smoke, str(Path(out).parent) if out else "")
                except Exception as e:  # the model could not be built: recorded
                    res["build"] = {
                        "ok": False,
                        "error": f"{type(e).__name__}: {e}",
                        "trace": traceback.format_exc()[-2000:],
                    }
            elif section == "group":
                group(run, results.setdefault("group", {}), device, smoke)
            elif section == "shapes":
                shapes = args.shapes or (SMOKE if smoke else SHAPES)
                for name in shapes:
                    shape_rows(
                        run,
                        results.setdefault("shapes", {}).setdefault(name, {}),
                        name,
                        device,
                        smoke,
                        name == shapes[0],
                    )
                    _write(results, out, partial=True)
            elif section == "eval_tiny":
                run(results, "eval_tiny", gpu_engine.eval_tiny, device, 8 if smoke else 150)
            elif section == "nccl":
                run(results, "nccl", gpu_rows.nccl)
            _write(results, out, partial=True)  # a run stopped by a time limit keeps the sections it finished
    results["seconds"] = time.perf_counter() - t_all
    results["failed"] = bad = failures(results)
    results["skipped"] = skipped(results)
    _write(results, out, partial=False)
    verdict = "all checks passed" if not bad else "FAILED: " + ", ".join(bad)
    print(f"[gpu_check] {verdict} in {results['seconds']:.0f} s")
    return 1 if bad else 0


def _standin(smoke: bool):
    if not smoke:
        return contextlib.nullcontext()
    from r3lab.testing.graphs import standin_graphs

    return standin_graphs()


if __name__ == "__main__":
    raise SystemExit(main())
