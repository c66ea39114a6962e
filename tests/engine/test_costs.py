"""Timing the engine against the re-prefill loop: both modes write the same tokens, one row per crop count."""

from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.costs import compare, model_tokens, reprefill_curve
from r3lab.testing import tiny_policy, toy_image


def test_reprefill_curve_rows_and_compare():
    policy = tiny_policy()
    sample = Sample(toy_image(), "What colour is the disc?", ["red"])
    rows = reprefill_curve(policy, sample, [1, 2], repeats=1)
    assert [r["crops"] for r in rows] == [1, 2]
    for r in rows:
        assert r["reuse_s"] > 0 and r["reprefill_s"] > 0 and r["model_tokens"] > 0
        assert r["reprefill_text_slots"] > r["reuse_text_slots"]  # the official loop recomputes the context
    best = compare(policy, [sample], {"a": RolloutConfig(max_new_tokens=4, seed=0)}, repeats=2, group_size=2)
    seconds, trajs, work = best["a"]
    assert seconds > 0 and len(trajs) == 2 and model_tokens(trajs) > 0 and work["forwards"] > 0
