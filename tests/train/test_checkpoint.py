import json
import random

import numpy as np
import pytest
import torch

from r3lab.core.answer import extract_answer
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from r3lab.train.config import RGRPOConfig, SFTConfig
from r3lab.train.metrics import MetricLog
from r3lab.train.optim import make_optimizer
from r3lab.train.rewards import RewardTerm
from r3lab.train.rgrpo import scripted_rollout
from r3lab.train.rgrpo import train as rgrpo_train
from r3lab.train.sft import train as sft_train

TIMING = {"tokens_per_s", "gen_tokens_per_s", "traj_per_s", "time", "time_rollout", "time_update", "wall"}


def same_rows(a: MetricLog, b: MetricLog):
    assert len(a) == len(b)
    for x, y in zip(a.rows, b.rows):
        assert {k: v for k, v in x.items() if k not in TIMING} == {k: v for k, v in y.items() if k not in TIMING}


def same_params(p, q):
    for (n, a), (_, b) in zip(p.model.named_parameters(), q.model.named_parameters()):
        assert torch.equal(a, b), n


def test_save_load_round_trip_and_latest(tmp_path):
    policy = tiny_policy(fresh=True)
    cfg = SFTConfig(steps=2, batch_size=2, lr_lm=1e-2)
    sft_train(policy, toy_samples(2, policy.view), cfg)
    opt = make_optimizer(policy.model, cfg)
    loss = policy.model.lm_head.weight.square().sum()
    loss.backward()
    opt.step()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    for step in (1, 2, 3, 4):
        path = save_checkpoint(tmp_path, policy, opt, step, {"note": "x"}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000003", "step_000004"]
    assert find_checkpoint(tmp_path) == path and (tmp_path / "latest").read_text().strip() == path.name
    expect = (random.random(), np.random.rand(), torch.rand(1))
    other = tiny_policy(seed=1, fresh=True)
    opt2 = make_optimizer(other.model, cfg)
    meta = load_checkpoint(tmp_path, other, opt2)
    assert meta["step"] == 4 and meta["note"] == "x"
    same_params(policy, other)
    a, b = opt.state_dict(), opt2.state_dict()
    for k in a["state"]:
        for name, v in a["state"][k].items():
            assert torch.equal(v, b["state"][k][name])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expect  # RNG restored to the save point
    from r3lab.model.policy import load_policy

    same_params(policy, load_policy(path))  # a checkpoint is also a plain policy folder
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing", other)


def _len_reward(prompts, completions, **kw):
    return [len(extract_answer(c) or "") / 10 for c in completions]


def _rgrpo(policy, out, steps=3, resume=False, callbacks=()):
    prefix = "<think>It is</think><answer>"
    n = len(policy.encode(prefix)) + 4
    cfg = RGRPOConfig(
        steps=steps,
        group_size=2,
        batch_size=4,
        micro_rows=2,
        inner_epochs=2,
        lr_lm=1e-2,
        rollout={"max_new_tokens": n, "max_segment_tokens": n},
        out_dir=str(out),
        resume=resume,
        seed=3,
    )
    return rgrpo_train(
        policy,
        toy_samples(4, policy.view),
        cfg,
        callbacks,
        rollout_fn=scripted_rollout(lambda s, j, step: prefix),
        terms=[RewardTerm("len", _len_reward)],
    )


def test_rgrpo_interrupt_saves_and_resume_reproduces_the_next_step(tmp_path):
    whole = tiny_policy(fresh=True)
    full = _rgrpo(whole, tmp_path / "a")
    assert len(full) == 3 and full.series("reward_std")[1][0] > 0  # sampled answers differ in length

    def stop_after_two(state, row):
        if state.step == 2:
            raise KeyboardInterrupt

    part_policy = tiny_policy(fresh=True)
    with pytest.warns(UserWarning, match="interrupted after step 2"):
        part = _rgrpo(part_policy, tmp_path / "b", callbacks=[stop_after_two])
    assert len(part) == 2 and find_checkpoint(tmp_path / "b").name == "step_000002"
    assert len(MetricLog.load_jsonl(tmp_path / "b" / "log.jsonl")) == 2
    resumed_policy = tiny_policy(fresh=True)
    resumed = _rgrpo(resumed_policy, tmp_path / "b", resume=True)
    same_rows(resumed, full)
    same_params(resumed_policy, whole)
    state = json.loads((find_checkpoint(tmp_path / "b") / "state.json").read_text())
    assert state["step"] == 3 and state["kind"] == "RGRPOConfig"


def test_sft_resume_reproduces_the_uninterrupted_run(tmp_path):
    def run(out, resume=False, callbacks=()):
        policy = tiny_policy(fresh=True)
        cfg = SFTConfig(steps=3, batch_size=2, grad_accum=2, lr_lm=1e-2, warmup=1, out_dir=str(out), resume=resume)
        return policy, sft_train(policy, toy_samples(3, policy.view), cfg, callbacks)

    def stop(state, row):
        if state.step == 2:
            raise KeyboardInterrupt

    full_policy, full = run(tmp_path / "a")
    with pytest.warns(UserWarning, match="interrupted"):
        run(tmp_path / "b", callbacks=[stop])
    resumed_policy, resumed = run(tmp_path / "b", resume=True)
    assert [r["step"] for r in resumed] == [1, 2, 3]
    same_rows(resumed, full)
    same_params(resumed_policy, full_policy)


def test_a_run_along_a_longer_schedule_continued_to_its_end_is_the_run_of_that_length(tmp_path):
    def run(out, steps, schedule_steps=0, resume=False):
        policy = tiny_policy(fresh=True)
        cfg = SFTConfig(
            steps=steps,
            batch_size=2,
            lr_lm=1e-2,
            warmup=0.25,
            out_dir=str(out),
            resume=resume,
            schedule_steps=schedule_steps,
        )
        return policy, sft_train(policy, toy_samples(4, policy.view), cfg)

    full_policy, full = run(tmp_path / "a", 4)
    _, part = run(tmp_path / "b", 2, schedule_steps=4)
    assert [r["lr"] for r in part] == [r["lr"] for r in full][:2]  # part-way along the 4-step warm-up and cosine
    assert [r["lr"] for r in run(tmp_path / "c", 2)[1]] != [r["lr"] for r in part]  # not a 2-step schedule
    resumed_policy, resumed = run(tmp_path / "b", 4, schedule_steps=4, resume=True)
    same_rows(resumed, full)
    same_params(resumed_policy, full_policy)
    with pytest.raises(ValueError, match="schedule_steps 3 is shorter than steps 4"):
        SFTConfig(steps=4, schedule_steps=3)


def test_resuming_a_finished_run_loads_it_and_leaves_its_last_checkpoint_as_it_was(tmp_path):
    # the recipe resumes finished phases; under several ranks a rewrite raced the other ranks' reads
    def run(resume):
        policy = tiny_policy(fresh=True)
        cfg = SFTConfig(steps=2, batch_size=2, lr_lm=1e-2, warmup=1, out_dir=str(tmp_path), resume=resume)
        return policy, sft_train(policy, toy_samples(2, policy.view), cfg)

    done_policy, done = run(False)
    last = find_checkpoint(tmp_path)
    before = {f.name: f.stat().st_mtime_ns for f in last.iterdir()}
    again_policy, again = run("auto")
    assert [r["step"] for r in again] == [r["step"] for r in done] == [1, 2]
    same_params(again_policy, done_policy)  # loaded, not trained again
    assert find_checkpoint(tmp_path) == last and {f.name: f.stat().st_mtime_ns for f in last.iterdir()} == before


# -- crafted and damaged checkpoints: refused naming the file, before the policy changes ------------------
def _saved(tmp_path):
    policy = tiny_policy(fresh=True)
    opt = make_optimizer(policy.model, SFTConfig())
    policy.model.lm_head.weight.square().sum().backward()
    opt.step()
    return save_checkpoint(tmp_path / "run", policy, opt, 1, {"config": {}, "kind": "SFTConfig"})


def _truncate(f):
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size // 2)


def _nan_weights(ckpt):
    from safetensors.torch import load_file, save_file

    w = load_file(str(ckpt / "model.safetensors"))
    w[next(iter(w))].fill_(float("nan"))
    save_file(w, str(ckpt / "model.safetensors"), metadata={"format": "pt"})


def _other_family(ckpt):
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2_vl"}))


@pytest.mark.parametrize(
    "damage,file,expected",
    [
        (lambda c: _truncate(c / "model.safetensors"), "model.safetensors", "is damaged or truncated"),
        (lambda c: _truncate(c / "optimizer.safetensors"), "optimizer.safetensors", "is damaged or truncated"),
        (lambda c: (c / "state.json").write_text('{"step": 1, "rng": '), "state.json", "is damaged: not valid JSON"),
        (_other_family, "config.json", "holds a 'qwen2_vl' model, but this run trains a 'qwen2_5_vl' one"),
        (_nan_weights, "", r"parameters \[.*\] hold NaN/inf, so this checkpoint cannot be resumed"),
    ],
)
def test_a_damaged_or_crafted_checkpoint_is_refused_and_changes_nothing(tmp_path, damage, file, expected):
    ckpt = _saved(tmp_path)
    damage(ckpt)
    policy = tiny_policy(seed=1, fresh=True)
    opt = make_optimizer(policy.model, SFTConfig())
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    with pytest.raises(ValueError, match=expected) as e:
        load_checkpoint(tmp_path / "run", policy, opt)
    assert str(ckpt / file).rstrip("/") in str(e.value)
    assert all(torch.equal(v, policy.model.state_dict()[k]) for k, v in before.items())  # nothing was loaded
    assert not opt.state_dict()["state"]
