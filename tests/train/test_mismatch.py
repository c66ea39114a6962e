"""The rollout-trainer mismatch R-GRPO logs every step: the log-probs recorded at sampling against the training
forward's before the update. In float32 on this CPU both are the same computation, so it is zero up to rounding,
whichever cache the rollout kept; a shifted record shows up in every key."""

import math
from dataclasses import replace

import pytest
import torch

from r3lab.engine.rollouts import rollout
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.config import RGRPOConfig
from r3lab.train.metrics import mismatch_metrics, mismatch_sums
from r3lab.train.rgrpo import rollout_config, train

KEYS = ("mismatch/abs_mean", "mismatch/abs_max", "mismatch/kl", "mismatch/clip_share")


def test_mismatch_sums_measure_the_gap_on_recorded_tokens_only():
    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    sampled = torch.tensor([[-1.5, -2.0, float("nan"), -1.0]])  # d = 0.5, 0, (nothing recorded), -2
    mask = torch.tensor([[True, True, True, False]])
    s = mismatch_sums(logp, sampled, mask, eps_low=0.2, eps_high=0.28)
    assert s["tokens"] == 2 and s["abs"] == pytest.approx(0.5) and s["max"] == pytest.approx(0.5)
    assert s["kl"] == pytest.approx(math.exp(0.5) - 1.5) and s["clipped"] == 1  # exp(0.5) = 1.65 > 1.28
    m = mismatch_metrics([s, mismatch_sums(logp, logp, mask, 0.2, 0.28)])
    assert set(m) == set(KEYS) and m["mismatch/abs_mean"] == pytest.approx(0.5 / 5)  # 2 + 3 tokens
    assert m["mismatch/abs_max"] == pytest.approx(0.5) and m["mismatch/clip_share"] == pytest.approx(0.2)
    assert math.isnan(mismatch_metrics([])["mismatch/kl"])


def _sampled(cache, shift=0.0):
    """A rollout function that samples (no scripts) with the given cache, its recorded log-probs shifted by `shift`."""

    def fn(policy, samples, state):
        out = rollout(policy, samples, replace(rollout_config(state.config, state.step), cache=cache), progress=False)
        for t in out:
            for p in t.pieces:
                if p.logprobs is not None:
                    p.logprobs = [v + shift for v in p.logprobs]
        return out

    return fn


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_an_rgrpo_run_logs_a_zero_mismatch_in_float32(cache):
    policy = tiny_policy(fresh=True)
    cfg = RGRPOConfig(
        steps=2,
        group_size=2,
        batch_size=4,
        micro_rows=2,
        inner_epochs=2,
        lr_lm=1e-2,
        rollout={"max_new_tokens": 24, "max_segment_tokens": 24},
    )
    log = train(policy, toy_samples(4, policy.view), cfg, rollout_fn=_sampled(cache))
    for row in log.rows:
        assert all(k in row for k in KEYS), row.keys()
        assert row["mismatch/abs_max"] < 1e-4 and row["mismatch/abs_mean"] < 1e-5
        assert 0 <= row["mismatch/kl"] < 1e-8 and row["mismatch/clip_share"] == 0.0
    assert log.rows[0]["ratio_mean"] != 1.0  # the second inner epoch moved: the mismatch is read before it


def test_a_shifted_record_shows_in_every_key():
    policy = tiny_policy(fresh=True)
    cfg = RGRPOConfig(
        steps=1,
        group_size=2,
        batch_size=4,
        micro_rows=4,
        lr_lm=1e-2,
        rollout={"max_new_tokens": 16, "max_segment_tokens": 16},
    )
    row = train(policy, toy_samples(2, policy.view), cfg, rollout_fn=_sampled("dynamic", shift=0.5)).rows[0]
    assert row["mismatch/abs_mean"] == pytest.approx(0.5, abs=1e-4)
    assert row["mismatch/abs_max"] == pytest.approx(0.5, abs=1e-4)
    assert row["mismatch/kl"] == pytest.approx(math.exp(-0.5) - 1 + 0.5, abs=1e-4) and row["mismatch/clip_share"] == 1.0
