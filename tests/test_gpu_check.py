"""benchmarks/gpu_check.sh's checks run end to end in their CPU smoke mode (r3-tiny sizes, Qwen2.5-VL and SmolVLM):
the engine's exactness in bf16 and fp32 for both decode paths, decode-step times, rollouts, one R-GRPO step per
path with its rollout-trainer mismatch, capture, one SFT and one R-GRPO step, full and LoRA, r3-tiny's evaluation;
without CUDA and without --smoke it stops at once; and benchmarks/explain.py's in-process device path (what
`--device cuda` runs) on this CPU."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_gpu_check_smoke_mode_passes_every_check(tmp_path):
    pytest.importorskip("peft")
    mod = _load("gpu_check")
    out = tmp_path / "gpu.json"
    assert mod.main(["--smoke", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["smoke"] and res["failed"] == [] and set(res["shapes"]) == {"qwen2_5_vl", "smolvlm"}
    assert res["sections"] == list(mod.SECTIONS) and not res["partial"]
    qwen, smol = res["shapes"]["qwen2_5_vl"], res["shapes"]["smolvlm"]
    for r in (qwen, smol):
        for path in ("exactness", "graphed"):
            assert r[f"{path}_fp32"]["max_abs_diff"] < 1e-4 and r[f"{path}_fp32"]["crops"] == 2
            bf = r[f"{path}_bf16"]  # judged against the fp32 logits of the same weights
            assert bf["inc_vs_fp32_mean"] <= 1.5 * bf["full_vs_fp32_mean"] + 1e-6 and bf["full_vs_fp32_mean"] > 0
            assert bf["argmax_agreement"] >= 0.98 and r["rollouts_bf16"]["same_tokens"]
        assert r["graphed_fp32"]["vs_eager_max_abs_diff"] < 1e-4 and r["graphed_bf16"]["path"] == "graphed"
        assert r["graphed_fp32"]["replays"] > 0 and r["graphed_fp32"]["graphs"] == "on"  # stood in for, replayed
        assert all(
            r["decode_bf16"][f"{p}_b{b}_{k}"] > 0
            for p in ("eager", "graphed")
            for b in (1, 2, 4)
            for k in ("ms", "step_ms", "token_ms")
        )
        assert all(r["decode_bf16"][f"graphed_b{b}_replays"] > 0 for b in (1, 2, 4))
        assert set(r["rollouts_bf16"]["timing"]) == {"eager", "graphed"}
        assert r["rollouts_bf16"]["eager_over_graphed"] > 0 and r["rollouts_bf16"]["graphed_second"]["captures"] == 0
        for path in ("eager", "graphed"):  # bf16 on both sides of the same CPU: a small mismatch, measured
            m = r["rgrpo_bf16"][path]
            assert 0 <= m["mismatch/abs_mean"] < 0.1 and m["mismatch/kl"] >= 0 and m["time_rollout"] > 0
    first = res["first"]  # the first-run section at r3-tiny sizes: every row it makes on a GPU
    assert first["capture"]["first_step"] and first["capture"]["captures"] > 0 and first["capture"]["ok"]
    assert first["graphed_bf16"]["replays"] > 0 and first["graphed_fp32"]["vs_eager_max_abs_diff"] < 1e-4
    assert first["decode"]["graphed_b4_captures"] == 0 and first["decode"]["graphed_b4_warmup_captures"] > 0
    assert first["profile_b4"]["replays"] == 5 and (tmp_path / "profile_b4.json").is_file()
    assert res["group"]["rollouts_bf16"]["same_tokens"] and res["group"]["rgrpo_bf16"]["ok"]
    ev = res["eval_tiny"]
    assert ev["ok"] and ev["same_answers"] and ev["n"] == 8 and ev["eager_s"] > 0 and ev["graphed_s"] > 0
    assert set(qwen["train_bf16"]) >= {"full", "lora"} and "skipped" in res["nccl"]
    patch = qwen["patch_bf16"]  # Qwen's Conv3d patch embedding as F.linear; SmolVLM's is a Conv2d, left alone
    assert patch["ok"] and patch["patches"] == 64 and patch["conv_ms"] > 0 and patch["linear_ms"] > 0
    assert max(patch["out_rel_diff"], patch["grad_input_rel_diff"], patch["grad_weight_rel_diff"]) <= 2e-2
    assert "skipped" in smol["patch_bf16"]
    assert (ROOT / "benchmarks" / "gpu_check.sh").read_text().count('benchmarks/gpu_check.py "$@"') == 1


@pytest.mark.slow
def test_the_shell_script_runs_the_sections_it_is_given(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks" / "gpu_check.sh"),
            "--smoke",
            "--sections",
            "nccl",
            "--out",
            str(tmp_path / "gpu.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((tmp_path / "gpu.json").read_text())
    assert res["sections"] == ["nccl"] and "skipped" in res["nccl"] and res["failed"] == [] and "first" not in res
    assert "installed" not in run.stdout  # transformers here is new enough: the carried wheels are left alone
    bad = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--sections", "frist"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown section(s) ['frist']" in bad.stderr


def test_a_capture_that_fails_turns_the_benchmark_row_red(capsys, monkeypatch):
    """A graphed row counts only when its graphs replayed: a capture forced to fail (cuda_graphs=True: it raises into
    the row; "auto": the rollout decodes eagerly, said in its stats) is a failed row, never an eager number passing
    for a graphed one."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    check, engine = _load("gpu_check"), _load("gpu_engine")
    from r3lab.data.sample import Sample
    from r3lab.engine.pool import release_pool
    from r3lab.model.tiny import TinyConfig, build_tiny
    from r3lab.testing import toy_image
    from r3lab.testing.graphs import standin_graphs

    policy = build_tiny(TinyConfig(seed=3))
    sample = Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0")
    res = {}
    with standin_graphs():
        check.run_section(res, "replayed", engine.decode_steps, policy, sample, (1, 2), 4)
    assert res["replayed"]["ok"] and res["replayed"]["graphed_b2_replays"] > 0
    release_pool(policy)  # its captured steps would serve the next rollouts
    with standin_graphs(fail="operation not permitted when stream is capturing"):
        check.run_section(res, "raised", engine.decode_steps, policy, sample, (1, 2), 4)
        monkeypatch.setitem(engine.PATHS, "graphed", dict(engine.PATHS["graphed"], cuda_graphs="auto"))
        with pytest.warns(UserWarning, match="capturing the decode step as a CUDA graph failed"):
            check.run_section(res, "fell_back", engine.decode_steps, policy, sample, (1, 2), 4)
    assert not res["raised"]["ok"] and "stream is capturing" in res["raised"]["error"] and res["raised"]["trace"]
    fell = res["fell_back"]
    assert not fell["ok"] and fell["graphed_b1_replays"] == 0 and fell["graphed_b1_graphs"].startswith("broken: ")
    assert "did not replay graphs" in fell["why"]
    printed = capsys.readouterr().out
    assert "raised: FAILED" in printed and "fell_back: FAILED" in printed and "replayed: ok" in printed
    assert check.failures(res) == ["raised", "fell_back"]


def test_gpu_check_without_cuda_stops_at_once_and_says_why(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _load("gpu_check").main([]) == 2
    assert "no CUDA GPU here" in capsys.readouterr().err


@pytest.mark.slow
def test_explain_benchmark_device_path_runs_every_mode(tmp_path):
    pytest.importorskip("captum")
    mod = _load("explain")
    out = tmp_path / "explain_gpu.json"
    res = mod.main(
        [
            "--device",
            "cpu",
            "--shape",
            "tiny",
            "--dtype",
            "bfloat16",
            "--lengths",
            "300",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    raw = res["lengths"]["300"]["raw"]
    assert set(raw["wall_ms"]) == set(mod.MODES) and all(v > 0 for v in raw["wall_ms"].values())
    assert raw["layers"] == 4 and raw["tokens"] > 300 and res["lengths"]["300"]["summary"] is None  # no CUDA peaks
    assert json.loads(out.read_text())["dtype"] == "bfloat16"
    # the summary a CUDA run writes, from a CUDA-shaped raw record (peaks above what the call held)
    fake = dict(raw, peak_mb_above_held={m: 10.0 * (i + 1) for i, m in enumerate(mod.MODES)}, held_mb=100.0)
    summ = mod.device_summary(fake, 2)
    assert summ["ig_c1_peak_vs_forward"] == 3.0 and summ["ig_c1_total_peak_vs_forward"] == round(130 / 110, 3)
    assert mod.device_met(summ, 300)["ig_memory (c1, total)"] is True


def test_the_profile_summary_reads_a_chrome_trace(monkeypatch):
    """The first-run section's idle gaps: kernels after the first graph launch, busy time as the union of their
    intervals, the rest of the span idle (the host's share), per launch; the attention kernels named."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    first = _load("gpu_first")
    trace = {
        "traceEvents": [
            {"name": "prefill_gemm", "cat": "kernel", "ts": 0, "dur": 500},  # before the first replay: left out
            {"name": "cudaGraphLaunch", "cat": "cuda_runtime", "ts": 1000, "dur": 5},
            {"name": "gemm", "cat": "kernel", "ts": 1010, "dur": 3000},
            {"name": "fmha_cutlassF_bf16", "cat": "kernel", "ts": 2000, "dur": 1500},  # overlaps the gemm
            {"name": "cudaGraphLaunch", "cat": "cuda_runtime", "ts": 5000, "dur": 5},
            {"name": "gemm", "cat": "kernel", "ts": 5010, "dur": 4000},
        ]
    }
    s = first.trace_summary(trace, steps=5)
    assert s["graph_launches"] == s["steps"] == 2 and s["kernels"] == 3
    assert s["span_ms"] == 8.0 and s["busy_ms_per_step"] == 3.5 and s["idle_ms_per_step"] == 0.5
    assert s["attention_kernels"] == ["fmha_cutlassF_bf16"] and s["attention_share"] == round(1500 / 7000, 4)
    assert first.trace_summary({"traceEvents": []}, 5)["kernels"] == 0
