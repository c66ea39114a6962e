"""The shared training loop: batches checked against the data before any work, resume only with the same
settings, a diverged start refused (Ctrl-C and NaN steps: tests/test_adversarial.py)."""

import pytest
import torch

from r3lab.cli.app import main as cli_main
from r3lab.data.dataset import save_dataset
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train import loop
from r3lab.train.config import RGRPOConfig, SFTConfig
from r3lab.train.rgrpo import scripted_rollout
from r3lab.train.rgrpo import train as rgrpo_train
from r3lab.train.sft import train as sft_train


def _no_step(*a, **k):
    raise AssertionError("a step ran")


def test_a_batch_larger_than_the_data_is_refused_before_any_work(tmp_path, monkeypatch):
    import r3lab.train.rgrpo as rgrpo
    import r3lab.train.sft as sft

    monkeypatch.setattr(sft, "run_loop", _no_step)
    monkeypatch.setattr(rgrpo, "run_loop", _no_step)
    policy = tiny_policy(fresh=True)
    samples = toy_samples(4, policy.view)
    with pytest.raises(
        ValueError, match=r"asks for 100000 samples per step, but the data has only 4 samples.*at most 4"
    ):
        sft_train(policy, samples, SFTConfig(batch_size=100000))
    with pytest.raises(ValueError, match=r"asks for 5 prompts \(batch_size / group_size\) per step, .* only 4 samples"):
        rgrpo_train(policy, samples, RGRPOConfig(batch_size=10, group_size=2))
    save_dataset(samples, tmp_path / "ds", progress=False)  # the case: the CLI on a 4-sample dataset
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\) asks for 100000 samples per step"):
        cli_main(["train", "sft", "--data", str(tmp_path / "ds"), "--batch-size", "100000"])
    assert not (tmp_path / "ds" / "log.jsonl").exists()


def test_an_absurd_batch_is_refused_not_grown_into_memory(monkeypatch):
    monkeypatch.setattr(loop, "MAX_ROWS", 3)  # the bound, scaled down so that the test needs no memory
    policy = tiny_policy(fresh=True)
    samples = toy_samples(8, policy.view)
    with pytest.raises(ValueError, match=r"asks for 4 trajectories per step in one process, more than the 3 r3lab"):
        sft_train(policy, samples, SFTConfig(batch_size=4))
    with pytest.raises(ValueError, match=r"asks for 8 trajectories per step in one process"):
        rgrpo_train(
            policy,
            samples,
            RGRPOConfig(batch_size=8, group_size=4),
            rollout_fn=scripted_rollout(lambda s, j, step: "x<|im_end|>"),
        )
    monkeypatch.setattr(loop, "MAX_ROWS", 4)
    assert len(sft_train(policy, samples, SFTConfig(steps=1, batch_size=4))) == 1  # at the bound it trains


def test_a_diverged_start_policy_is_refused_naming_it(tmp_path):
    from r3lab.model.policy import load_policy

    policy = tiny_policy(fresh=True)
    with torch.no_grad():
        policy.model.lm_head.weight.fill_(float("nan"))
    bad = load_policy(policy.save(tmp_path / "diverged"))
    with pytest.raises(ValueError, match=r"diverged: parameters \['.*'\] hold NaN/inf before training starts"):
        sft_train(bad, toy_samples(2, bad.view), SFTConfig(steps=1, batch_size=2))


def test_resuming_with_other_settings_names_every_difference(tmp_path):
    policy = tiny_policy(fresh=True)
    out, samples = tmp_path / "run", toy_samples(2, policy.view)
    sft_train(policy, samples, SFTConfig(steps=1, batch_size=2, lr_lm=1e-2, out_dir=str(out)))
    changed = SFTConfig(
        steps=3, batch_size=2, lr_lm=1e-3, freeze_vision=True, out_dir=str(out), resume=True, save_every=1, log_every=2
    )  # steps, save_every and log_every may change
    with pytest.raises(
        ValueError,
        match=r"settings differ from the run saved in .*step_000001: lr_lm: saved 0\.01, "
        r"now 0\.001; freeze_vision: saved False, now True\. Resume with the saved",
    ):
        sft_train(tiny_policy(fresh=True), samples, changed)
    log = sft_train(
        tiny_policy(fresh=True),
        samples,
        SFTConfig(steps=2, batch_size=2, lr_lm=1e-2, out_dir=str(out), resume=True, save_every=1, log_every=2),
    )
    assert [r["step"] for r in log] == [1, 2]
    with pytest.raises(ValueError, match=r"step_000002 is a checkpoint of a SFTConfig run, not of a RGRPOConfig one"):
        rgrpo_train(tiny_policy(fresh=True), samples, RGRPOConfig(steps=2, out_dir=str(out), resume=True))


def test_the_log_is_written_as_rows_come_and_a_run_killed_before_its_first_checkpoint_restarts(tmp_path):
    from r3lab.train.metrics import MetricLog

    policy = tiny_policy(fresh=True)
    out, samples = tmp_path / "run", toy_samples(2, policy.view)
    seen = []

    def watch(state, row):  # what a user tailing log.jsonl sees while the run trains
        seen.append([r["step"] for r in MetricLog.load_jsonl(out / "log.jsonl")])

    cfg = dict(batch_size=2, out_dir=str(out), log_every=1, save_every=0)
    sft_train(policy, samples, SFTConfig(steps=2, **cfg), callbacks=[watch])
    assert seen == [[1], [1, 2]]
    # killed before its first checkpoint: only the live log is there; "auto" starts afresh, False refuses
    for p in out.glob("step_*"):
        import shutil

        shutil.rmtree(p)
    (out / "latest").unlink()
    with pytest.raises(FileExistsError, match="already holds a training run"):
        sft_train(tiny_policy(fresh=True), samples, SFTConfig(steps=1, **cfg))
    log = sft_train(tiny_policy(fresh=True), samples, SFTConfig(steps=1, resume="auto", **cfg))
    assert [r["step"] for r in log] == [1] and len(MetricLog.load_jsonl(out / "log.jsonl")) == 1
    # resumed from a checkpoint: rows logged after it (and lost with the process) are not kept twice
    (out / "log.jsonl").write_text((out / "log.jsonl").read_text() + '{"step": 2, "loss": 9.0}\n')
    log = sft_train(tiny_policy(fresh=True), samples, SFTConfig(steps=2, resume=True, **cfg))
    assert [r["step"] for r in MetricLog.load_jsonl(out / "log.jsonl")] == [1, 2] and log.last["loss"] != 9.0
