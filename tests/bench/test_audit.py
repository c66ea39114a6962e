"""`r3lab bench --audit`: every category's row gets the audit's keys, each answer scored by the benchmark's own rule."""

import json

from r3lab.audit.audit import SETTINGS, AuditSettings
from r3lab.audit.bench_audit import bench_audit
from r3lab.bench.readers import read_benchmark
from r3lab.bench.run import BenchConfig
from r3lab.cli.app import main
from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import Frame
from r3lab.testing import tiny_policy
from r3lab.testing.mini_benchmarks import write_benchmark

END = "<|im_end|>"


def test_vstar_audit_scores_every_setting_by_the_benchmark_rule(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("vstar", tmp_path)
    samples = read_benchmark("vstar", data, n=2)
    frame = Frame.of((320, 240), policy.view)
    call = " " + format_crop_call([int(round(v)) for v in frame.to_input(samples[0].regions[0])])
    right = f"</think><answer>{samples[0].answers[0]}</answer>{END}"
    scripts = [["<think>look", call, right], ""]
    cfg = BenchConfig(
        data=str(data),
        n=2,
        batch=2,
        out=str(tmp_path / "run"),
        rollout={"max_new_tokens": 40, "max_segment_tokens": 40},
        necessity=True,
    )
    res = bench_audit(policy, "vstar", cfg, AuditSettings(k=2), scripts=scripts)
    first = res.items[0]["audit"]
    assert set(first["settings"]) == set(SETTINGS) and "necessity" in res.items[0]  # both extras ran
    # the forced answer is right whatever the crop showed; the forced call is answered without pixels in format_only
    assert [first["settings"][s]["hit"] for s in SETTINGS] == [1.0] * len(SETTINGS)
    assert first["settings"]["format_only"]["crops"] == 1 and first["settings"]["no_crop"]["crops"] == 0
    assert first["settings"]["result_only"]["crops"] == 1  # its own crop given up front
    assert first["chance"] == 0.25 or first["chance"] == 0.5  # one over the question's options
    row = res.rows["all"]
    assert {
        "acc_format_only",
        "acc_format_only_chance",
        "tool_only",
        "acc_blank",
        "wall_s_per_correct_own",
        "tokens_per_correct_majority_no_crop",
        "attn_box_n",
    } <= set(row)
    assert row["attn_box_n"] >= 1  # V* names its target: the forced crop is set against it
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "acc_dummy_crop" in saved["rows"]["all"]


def test_bench_audit_flag(tmp_path):
    data = write_benchmark("vstar", tmp_path)
    out = tmp_path / "run"
    assert (
        main(
            [
                "bench",
                "vstar",
                "--data",
                str(data),
                "--n",
                "2",
                "--out",
                str(out),
                "--max-new-tokens",
                "6",
                "--audit",
                "--audit-k",
                "2",
            ]
        )
        == 0
    )
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert all("acc_result_only" in r and "pass_at_k_no_crop_chance" in r for r in rows.values())
