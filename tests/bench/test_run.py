"""`run_bench` end to end on miniature benchmark copies: scripted answers give scores checked by hand."""

import doctest
import json

import pytest

from r3lab.bench import scoring
from r3lab.bench.readers import read_benchmark
from r3lab.bench.run import BenchConfig, load_bench_run, run_bench
from r3lab.core.crop_calls import format_crop_call
from r3lab.core.regions import Frame, box_iou
from r3lab.testing import tiny_policy
from r3lab.testing.mini_benchmarks import write_benchmark
from r3lab.viz import plot_trajectory
from r3lab.viz.bench import chance, plot_bench

END = "<|im_end|>"


def test_doctests():
    res = doctest.testmod(scoring)
    assert res.failed == 0 and res.attempted >= 8


def _wrong(sample) -> str:
    return next(k for k in sample.provenance["options"] if k != sample.answers[0])


def test_vstar_scores_crops_and_files_by_hand(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("vstar", tmp_path)
    samples = read_benchmark("vstar", data)  # 3 attribute questions, then 2 position questions
    frame = Frame.of((320, 240), policy.view)
    box = [int(round(v)) for v in frame.to_input(samples[0].regions[0])]
    ans = [s.answers[0] for s in samples]
    scripts = [
        ["<think>look", " " + format_crop_call(box), f"</think><answer>{ans[0]}</answer>{END}"],
        f"<answer>{ans[1]}</answer>{END}",
        f"<answer>{_wrong(samples[2])}</answer>{END}",
        f"<answer>{ans[3]}. yes</answer>{END}",
        f"<answer>none</answer>{END}",
    ]
    res = run_bench(policy, "vstar", BenchConfig(data=str(data), out=str(tmp_path / "run"), batch=2), scripts=scripts)
    assert [it["hit"] for it in res.items] == [1, 1, 0, 1, 0]
    assert res.accuracy == pytest.approx(3 / 5)
    assert res.rows["direct_attributes"]["accuracy"] == pytest.approx(2 / 3)
    assert res.rows["relative_position"]["accuracy"] == pytest.approx(1 / 2)
    row = res.rows["all"]
    assert row["crop_rate"] == pytest.approx(0.2) and row["accuracy_crop"] == 1.0 and row["accuracy_no_crop"] == 0.5
    assert row["crop_iou"] > 0.9 and res.headline["crop IoU"] == row["crop_iou"]  # the crop covers the target
    assert res.items[0]["provenance"]["shuffle"]["seed"] == 0
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} == {"items.jsonl", "table.md", "results.json", "crops"}
    assert len((out / "items.jsonl").read_text().splitlines()) == 5 and len(list((out / "crops").iterdir())) == 1
    assert json.loads((out / "results.json").read_text())["rows"]["all"]["n"] == 5
    assert "| relative_position | 2 | 0.500 |" in (out / "table.md").read_text()
    items, trajs = load_bench_run(out)
    assert [len(t.crops) for t in trajs] == [1, 0, 0, 0, 0] and trajs[0].main.image.size == (320, 240)
    assert trajs[0].crops[0].image is not None and items[0]["crop_iou"] == row["crop_iou"]
    plot_trajectory(trajs[0].tokenize(policy))  # the views read a saved run
    plot_bench(res).savefig(out / "figure.png")
    # V*: 4 options for direct_attributes, 2 for relative_position; the accuracy panel draws that chance level
    assert chance(res, "direct_attributes") == 0.25 and chance(res, "relative_position") == 0.5
    fig = plot_bench(res)
    assert any(c.get_label() == "chance" for c in fig.axes[0].collections)
    assert all(t.get_text() for t in fig.axes[0].texts)  # every bar labelled, a 0 included


def test_hrbench_is_averaged_over_cycles(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("hrbench4k", tmp_path)  # 5 questions: cycles (0, 1), (2, 3), (4,); single, cross, ...
    samples = read_benchmark("hrbench4k", data)
    hits = [1, 0, 1, 1, 0]
    scripts = [f"<answer>{s.answers[0] if h else _wrong(s)}</answer>{END}" for s, h in zip(samples, hits)]
    res = run_bench(policy, "hrbench4k", BenchConfig(data=str(data)), scripts=scripts)
    assert [it["hit"] for it in res.items] == hits
    h = res.headline
    assert h["accuracy (cycle-averaged)"] == pytest.approx((0.5 + 1 + 0) / 3)  # per item it would be 3/5
    assert h["accuracy (per item)"] == pytest.approx(0.6)
    assert h["single (cycle-averaged)"] == pytest.approx(2 / 3) and h["cross (cycle-averaged)"] == pytest.approx(1 / 3)


def test_treebench_miou_of_the_boxes_in_the_reasoning(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("treebench", tmp_path)
    samples = read_benchmark("treebench", data)
    t0, t1 = (tuple(int(v) for v in s.regions[0]) for s in samples[:2])
    half = (t1[0], t1[1], t1[0] + (t1[2] - t1[0]) // 2, t1[3])
    box = lambda b: "<box>[" + ",".join(str(v) for v in b) + "]</box>"  # noqa: E731
    scripts = [
        f"<think>the disc {box(t0)}</think><answer>{samples[0].answers[0]}</answer>{END}",
        f"<think>the disc {box(half)}</think><answer>{_wrong(samples[1])}</answer>{END}",
        f"<answer>{samples[2].answers[0]}</answer>{END}",
        f"<answer>{samples[3].answers[0]}</answer>{END}",
    ]
    res = run_bench(policy, "treebench", BenchConfig(data=str(data)), scripts=scripts)
    assert [it["box_iou"] for it in res.items][:2] == [1.0, pytest.approx(box_iou(half, t1))]
    assert res.headline["mIoU"] == pytest.approx((1.0 + box_iou(half, t1)) / 4)
    assert res.accuracy == pytest.approx(3 / 4)
    assert set(res.rows) == {"Perception", "Reasoning", "all"}


def test_mme_realworld_reads_the_letter_after_the_prompt_s_lead_in(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("mme-realworld-lite", tmp_path)
    samples = read_benchmark("mme-realworld-lite", data)
    scripts = [f"<answer>The best answer is ({s.answers[0]})</answer>{END}" for s in samples]
    res = run_bench(policy, "mme-realworld-lite", BenchConfig(data=str(data), n=3), scripts=scripts[:3])
    assert res.accuracy == 1.0 and len(res.items) == 3


def test_images_are_decoded_chunk_by_chunk_and_not_kept(tmp_path, monkeypatch):
    from r3lab.bench import readers
    from r3lab.bench import run as bench

    data = write_benchmark("hrbench8k", tmp_path)
    samples = read_benchmark("hrbench8k", data)
    assert all(callable(s.image) for s in samples)  # decoded only when a rollout asks
    decoded, at_rollout = [], []
    real_image_at, real_rollout = readers.image_at, bench.rollout
    monkeypatch.setattr(readers, "image_at", lambda ref: decoded.append(ref["row"]) or real_image_at(ref))
    monkeypatch.setattr(bench, "rollout", lambda *a, **k: at_rollout.append(len(decoded)) or real_rollout(*a, **k))
    res = run_bench(
        tiny_policy(),
        "hrbench8k",
        BenchConfig(data=str(data), batch=2, rollout={"max_new_tokens": 4}),
        keep_images=False,
    )
    assert at_rollout == [0, 2, 4] and len(decoded) == 5  # each chunk's images, when its turn comes, once each
    assert res.trajectories == [] and len(res.items) == 5


def test_pixel_budgets_and_instruction_apply_to_the_run_only(tmp_path):
    policy = tiny_policy()
    data = write_benchmark("vstar", tmp_path)
    cfg = BenchConfig(
        data=str(data), n=1, rollout={"max_new_tokens": 2}, max_pixels=56 * 56, instruction="Answer briefly."
    )
    res = run_bench(policy, "vstar", cfg)
    t = res.trajectories[0]
    assert t.main.info.input_size == (56, 28) and "\nAnswer briefly.<|im_end|>" in t.pieces[2].text
    assert policy.view.max_pixels == 112 * 112 and policy.prompt.instruction != "Answer briefly."


def test_bench_settings_are_checked():
    with pytest.raises(ValueError, match=r"BenchConfig\.batch = 0 is not allowed"):
        BenchConfig(batch=0)
    with pytest.raises(ValueError, match=r"BenchConfig\.rollout\.max_crops = -1 is not allowed"):
        BenchConfig(rollout={"max_crops": -1})
    with pytest.raises(ValueError, match="no data given"):
        run_bench(tiny_policy(), "vstar", BenchConfig())
    with pytest.raises(ValueError, match="unknown benchmark"):
        run_bench(tiny_policy(), "vqav2", BenchConfig(data="x"))
