"""Tool necessity in `run_bench`: every category's row gets eval's keys, scored by the benchmark's own rule;
ablations that need a target box are "not available" (null) on a benchmark without boxes."""

import json
import math

import pytest

from r3lab.bench.readers import read_benchmark
from r3lab.bench.run import BenchConfig, run_bench
from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import Frame
from r3lab.evaluation.necessity import KEYS, VARIANTS, bench_necessity
from r3lab.testing import tiny_policy
from r3lab.testing.mini_benchmarks import write_benchmark

END = "<|im_end|>"
SHORT = {"max_new_tokens": 40, "max_segment_tokens": 40}  # room for a scripted crop call and answer (30 tokens)


def _wrong(sample) -> str:
    return next(k for k in sample.provenance["options"] if k != sample.answers[0])


def test_vstar_rows_carry_the_keys_and_each_ablation_really_ran(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("vstar", tmp_path)
    samples = read_benchmark("vstar", data, n=3)
    frame = Frame.of((320, 240), policy.view)
    call = " " + format_crop_call([int(round(v)) for v in frame.to_input(samples[0].regions[0])])
    scripts = [
        ["<think>look", call, f"</think><answer>{samples[0].answers[0]}</answer>{END}"],
        ["<think>look", call, f"</think><answer>{_wrong(samples[1])}</answer>{END}"],
        "",
    ]  # the third question: the tiny model writes what it writes, under every ablation
    cfg = BenchConfig(data=str(data), n=3, batch=3, out=str(tmp_path / "run"), rollout=SHORT)
    res = bench_necessity(policy, "vstar", cfg, scripts=scripts)
    first = res.items[0]["necessity"]
    assert first["need"] is True and set(first) == {"need", *VARIANTS}
    # the forced crop call is refused with crops disabled and honoured (swapped or moved) under every other ablation
    assert {v: first[v]["crops"] for v in VARIANTS} == {
        "no_crop": 0,
        "blank": 1,
        "coarse": 1,
        "random_box": 1,
        "gt_box": 1,
    }
    assert [res.items[1]["necessity"][v]["hit"] for v in VARIANTS] == [0] * 5  # the forced wrong letter
    assert [first[v]["hit"] for v in VARIANTS] == [1] * 5
    for cat, row in res.rows.items():
        assert set(KEYS) <= set(row), cat
    a = res.rows["all"]
    assert a["acc_own"] == res.accuracy and a["crop_rate_need"] == a["crop_rate"]  # every V* question has a target
    assert math.isnan(a["crop_rate_no_need"])
    # over the same binary hits, gains minus harms is the accuracy the crops add
    assert a["tool_gain"] - a["tool_harm"] == pytest.approx(a["acc_own"] - a["acc_no_crop"])
    assert a["zooming_gap"] == pytest.approx(a["acc_gt_box"] - a["acc_no_crop"])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["config"]["necessity"] is True and set(KEYS) <= set(saved["rows"]["direct_attributes"])
    line = json.loads((tmp_path / "run" / "items.jsonl").read_text().splitlines()[0])
    assert line["necessity"]["no_crop"] == {"hit": 1, "crops": 0}
    assert "| category | acc_own |" in (tmp_path / "run" / "table.md").read_text()


def test_a_benchmark_without_target_boxes_reports_box_ablations_as_not_available(tmp_path):
    data = write_benchmark("hrbench4k", tmp_path)
    res = bench_necessity(tiny_policy(), "hrbench4k", BenchConfig(data=str(data), n=2, rollout={"max_new_tokens": 8}))
    for it in res.items:
        assert it["necessity"]["need"] is None and it["necessity"]["gt_box"] is None
        assert it["necessity"]["random_box"] is None and it["necessity"]["no_crop"]["crops"] == 0
    a = res.rows["all"]
    for k in ("acc_random_box", "acc_gt_box", "zooming_gap", "crop_rate_need", "crop_rate_no_need"):
        assert math.isnan(a[k]), k
    for k in ("acc_own", "acc_no_crop", "acc_blank", "acc_coarse", "tool_gain", "tool_harm"):
        assert 0.0 <= a[k] <= 1.0, k
    assert res.to_dict()["rows"]["all"]["acc_gt_box"] is None  # JSON: null, never NaN


def test_necessity_without_its_ablations_is_refused(tmp_path):
    data = write_benchmark("vstar", tmp_path)
    with pytest.raises(ValueError, match="bench_necessity"):
        run_bench(tiny_policy(), "vstar", BenchConfig(data=str(data), n=1, necessity=True))
