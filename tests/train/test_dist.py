import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from r3lab.train import dist

# The same training, run by one process and by `torchrun --nproc_per_node 2` (gloo): SFT, then
# R-GRPO on scripted groups (every row's text is forced, so both runs see identical trajectories).
# Plain SGD: Adam turns float noise in near-zero gradients into steps of size ~lr, which
# differ between any two summation orders (even micro-batch sizes in one process).
WORKER = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from safetensors.torch import save_file
    from r3lab.train import dist
    from r3lab.core.crop_calls import find_crop_calls
    from r3lab.train.config import RGRPOConfig, SFTConfig
    from r3lab.train.rgrpo import scripted_rollout, train
    from r3lab.train.sft import train as sft
    from r3lab.testing import tiny_policy, toy_samples

    def script(sample, j, step):
        call = find_crop_calls(sample.rationale[0].text)[0].raw
        a = sample.answer if (j + step) % 2 == 0 else "purple"
        return ["<think>look ", call, f" it is {a}.</think><answer>{a}</answer><|im_end|>"]

    out = sys.argv[1]
    policy = tiny_policy(fresh=True)
    samples = toy_samples(4, policy.view)
    lrs = dict(optimizer="sgd", lr_lm=0.1, lr_merger=0.1, lr_vision=0.1, freeze_vision=False, freeze_merger=False)
    sft_log = sft(policy, samples, SFTConfig(steps=2, batch_size=4, grad_accum=1, warmup=0, **lrs))
    cfg = RGRPOConfig(steps=2, group_size=2, batch_size=8, micro_rows=2, inner_epochs=2,
                      rollout={"max_new_tokens": 48, "max_segment_tokens": 40}, **lrs)
    log = train(policy, samples, cfg, rollout_fn=scripted_rollout(script))
    if dist.info().is_main:
        save_file({n: p.detach().contiguous() for n, p in policy.model.named_parameters()}, out + "/params.safetensors")
        rows = {"sft": sft_log.rows, "rgrpo": log.rows, "world": dist.info().world_size}
        json.dump(rows, open(out + "/log.json", "w"))
    dist.shutdown()
""")


def _run(cmd, out, env_extra=None):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update({"TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}, **(env_extra or {}))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return load_file(str(out / "params.safetensors")), json.loads((out / "log.json").read_text())


@pytest.mark.slow
def test_two_process_gloo_run_equals_single_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    p1, log1 = _run([sys.executable, str(script), str(one)], one)
    p2, log2 = _run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(two)],
        two,
    )
    assert log1["world"] == 1 and log2["world"] == 2
    for key in ("reward", "reward_std", "accuracy", "crops_per_rollout", "batch_tokens"):
        assert [r[key] for r in log1["rgrpo"]] == [r[key] for r in log2["rgrpo"]], key
    for a, b in zip(log1["rgrpo"] + log1["sft"], log2["rgrpo"] + log2["sft"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    worst = max((p1[n] - p2[n]).abs().max().item() for n in p1)
    assert worst < 1e-6, worst  # SGD: Adam would blow float noise in near-zero gradients up to ~lr
    from r3lab.testing import tiny_policy

    init = dict(tiny_policy(fresh=True).model.named_parameters())
    moved = max((p1[n] - init[n]).abs().max().item() for n in p1)
    assert moved > 1000 * worst  # the runs trained: the agreement is not that of two idle models


def test_shard_keeps_groups_whole_and_refuses_uneven_splits():
    prompts = list(range(6))
    assert [dist.shard(prompts, r, 3) for r in range(3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        dist.shard(prompts, 0, 4)


def test_single_process_helpers_are_no_ops():
    d = dist.init()
    assert d.world_size == 1 and d.is_main and not d.distributed
    assert dist.all_sum(2.5) == 2.5 and dist.all_gather_floats([1.0, None]) == [1.0, None]
    assert dist.all_mean({"a": 1.0}) == {"a": 1.0} and dist.broadcast_object({"x": 1}) == {"x": 1}
    m = torch.nn.Linear(2, 2)
    assert dist.wrap_ddp(m) is m
    assert dist.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


# The SFT check's greedy rollouts, dealt out over two gloo ranks, score as one process scores them all.
EVAL_WORKER = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from r3lab.train import dist
    from r3lab.data.vlir import build_samples
    from r3lab.model.policy import load_policy
    from r3lab.evaluation.evaluation import evaluate_rows
    from r3lab.recipe.recipe_config import RecipeConfig

    dist.init()
    c = RecipeConfig()
    policy = load_policy(sys.argv[2], view=c.view_config())
    samples = build_samples(9, 40_001, ["read_one", "compare_two", "control"], c.world_config(), view=policy.view,
                            progress=False)
    rows = evaluate_rows(policy, samples, c.eval_config("sft"))
    if dist.info().is_main:
        json.dump({"rows": rows, "world": dist.info().world_size}, open(sys.argv[1] + "/rows.json", "w"))
    dist.shutdown()
""")


def _one_process_and_two_ranks(tmp_path, worker: str, checkpoint: str, result: str) -> dict:
    """`worker` run on a shipped checkpoint by one process and by two torchrun gloo ranks: {"one": ..., "two": ...},
    each the JSON rank 0 wrote to <out>/`result`."""
    from r3lab.core.env import REPO_ROOT

    script = tmp_path / "worker.py"
    script.write_text(worker)
    ckpt = str(REPO_ROOT / "assets" / "checkpoints" / checkpoint)
    got = {}
    for name, cmd in (
        ("one", [sys.executable]),
        ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]),
    ):
        out = tmp_path / name
        out.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        res = subprocess.run(
            cmd + [str(script), str(out), ckpt],
            env={**env, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        got[name] = json.loads((out / result).read_text())
    return got


@pytest.mark.slow
def test_evaluate_rows_over_two_ranks_equals_one_process(tmp_path):
    got = _one_process_and_two_ranks(tmp_path, EVAL_WORKER, "r3-tiny-sft", "rows.json")
    assert (got["one"]["world"], got["two"]["world"]) == (1, 2)
    one, two = got["one"]["rows"], got["two"]["rows"]
    assert set(one) == set(two) == {"read_one", "compare_two", "control", "all"}
    assert one["all"]["n"] == 9 and one["all"]["crop_rate"] > 0  # the shipped SFT crops: the rows hold crops
    for fam in one:
        for key in ("n", "accuracy", "crop_rate", "crop_iou", "contains_detail", "reward"):
            a, b = one[fam][key], two[fam][key]
            assert (a != a and b != b) or a == pytest.approx(b, abs=1e-6), (fam, key, a, b)


def test_deal_hands_out_whole_chunks_round_robin():
    assert dist.deal(10, 4) == [range(0, 4), range(4, 8), range(8, 10)]  # one process: every chunk, in order
    two = [dist.deal(10, 4, rank=r, world_size=2) for r in (0, 1)]
    assert two == [[range(0, 4), range(8, 10)], [range(4, 8)]]
    assert sorted(i for part in two for r in part for i in r) == list(range(10))
    assert dist.deal(5, 1, rank=1, world_size=2) == [range(1, 2), range(3, 4)] and dist.deal(0, 3) == []
    with pytest.raises(ValueError, match="chunk >= 1"):
        dist.deal(4, 0)


# The base stage's four checks (read, verdict with the grounding, text verdict, grounding), dealt out over two gloo
# ranks in their own batches, measure what one process measures; small batches so that each rank gets several.
CHECKS_WORKER = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from r3lab.train import dist
    from r3lab.model.policy import load_policy
    from r3lab.recipe import compare_check, drill_check, ground_check, read_check
    from r3lab.recipe.recipe_config import RecipeConfig

    dist.init()
    c = RecipeConfig()
    policy = load_policy(sys.argv[2], view=c.view_config())
    w = c.world_config()
    got = {"read": read_check.read_accuracy(policy, w, 5),
           "verdict": compare_check.verdict_accuracy(policy, w, 12, batch=4),
           "text": drill_check.text_verdict(policy, w, 12, batch=4),
           "where": ground_check.evaluate_where(policy, ground_check.WhereConfig(n=9, batch_rows=3)),
           "world": dist.info().world_size, "training": policy.model.training}
    if dist.info().is_main:
        json.dump(got, open(sys.argv[1] + "/checks.json", "w"))
    dist.shutdown()
""")


@pytest.mark.slow
def test_the_base_checks_over_two_ranks_equal_one_process(tmp_path):
    got = _one_process_and_two_ranks(tmp_path, CHECKS_WORKER, "r3-tiny-base", "checks.json")
    one, two = got.pop("one"), got.pop("two")
    assert (one.pop("world"), two.pop("world")) == (1, 2) and one == two
    assert one["read"]["n"] == 5 and one["verdict"]["n"] == 12 and one["where"]["valid"] > 0
    # the shipped base reads, compares and grounds: the sums are not all zero, so a lost share would show
    assert one["read"]["read_accuracy"] > 0 and one["verdict"]["verdict"] > 50 and one["where"]["centre_on_named"] > 50
