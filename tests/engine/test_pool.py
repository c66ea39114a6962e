"""The static cache's pool: kept on the policy, every step a rollout can reach captured before its first, attention
windows that follow the live length, and a key that changes with everything a recorded step bakes in (weights'
addresses, dtypes, the attention kernel of either config, peft's adapter state), so a changed model never replays
another's graphs. CUDA-graph capture is stood in for (tests/engine/conftest.py)."""

from dataclasses import replace

import pytest
import torch

from r3lab.data.sample import Sample
from r3lab.engine import pool as pools
from r3lab.engine.config import RolloutConfig
from r3lab.engine.pool import Pool, fingerprint, kept, release_pool
from r3lab.engine.rollouts import rollout
from r3lab.engine.static_cache import StaticSharedCache
from r3lab.model.adapters import LoRAConfig, add_lora, base_model, merge
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

from .conftest import standin_graphs
from .test_static_cache import CFG, SCRIPTS, worst


@pytest.fixture
def policy():
    return build_tiny(TinyConfig(seed=3))


@pytest.fixture(scope="module")
def samples():
    return [
        Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0"),
        Sample(toy_image((200, 300), 1), "Which shape is blue?", ["square"], sample_id="s1"),
    ]


def _watch(monkeypatch) -> tuple[list, list]:
    """Captures made while a decode step runs (none should be: everything is captured ahead), and the number of
    steps each capturing call recorded."""
    late, inside, batches = [], [], []
    capture, decode = Pool.capture, StaticSharedCache._decode

    def watched(self, pairs, *a, **kw):
        if inside:
            late.append(list(pairs))
        n = capture(self, pairs, *a, **kw)
        if n:
            batches.append(n)
        return n

    def decoding(self, slot):
        inside.append(1)
        try:
            return decode(self, slot)
        finally:
            inside.pop()

    monkeypatch.setattr(Pool, "capture", watched)
    monkeypatch.setattr(StaticSharedCache, "_decode", decoding)
    return late, batches


def test_steps_are_captured_ahead_largest_first_and_windows_follow_the_live_length(policy, samples, monkeypatch):
    standin_graphs(monkeypatch)
    monkeypatch.setattr(pools, "WINDOW", 64)
    late, _ = _watch(monkeypatch)
    stats = {}
    assert worst(policy, samples[:2], stats=stats) < 1e-4  # 4 rows cropping at different steps: exact
    pool = kept(policy)["pool"]
    order = list(pool.steps)
    assert order == sorted(order, reverse=True) and {b for b, _ in order} == {1, 2, 4} and not late
    windows = sorted({w for _, w in order})
    assert len(windows) >= 2 and windows[-1] == pool.slots  # 64 doubled up to the pool's slots
    assert stats["window_slots"] < 0.8 * stats["decodes"] * pool.slots  # attention read less than the whole buffer
    again = {}
    assert worst(policy, samples[:2], stats=again) < 1e-4
    assert again["captures"] == again["pools"] == 0 and again["replays"] > 0  # the kept pool serves the next one


def test_a_pool_that_grows_is_captured_once_not_per_step(policy, samples, monkeypatch):
    standin_graphs(monkeypatch)
    monkeypatch.setattr(pools, "ALIGN", 1)
    monkeypatch.setattr("r3lab.engine.rollouts.reserve", lambda policy, cfg: 1)
    late, batches = _watch(monkeypatch)
    stats = {}
    assert worst(policy, samples[:2], replace(CFG, compact_holes=1.0), stats=stats) < 1e-4
    # each pool (the first, then one per growth) captured in one go when it was made; none during a step
    assert stats["regrows"] >= 1 and not late and len(batches) == stats["pools"] == 1 + stats["regrows"]
    assert sum(batches) == stats["captures"]


def test_the_key_changes_with_what_a_recorded_step_bakes_in(policy):
    pytest.importorskip("peft")
    add_lora(policy, LoRAConfig(r=4))
    model = policy.model
    key = fingerprint(model)
    with model.disable_adapter():  # peft's Python state: a graph recorded with the adapters would replay them
        assert fingerprint(model) != key
    assert fingerprint(model) == key
    model.merge_adapter()  # merged weights in place, the LoRA branch skipped: same addresses, another step
    assert fingerprint(model) != key
    model.unmerge_adapter()
    assert fingerprint(model) == key
    layer = next(m for m in model.modules() if hasattr(m, "merged") and getattr(m, "scaling", None))  # a LoRA layer
    layer.scale_layer(2.0)
    assert fingerprint(model) != key
    layer.unscale_layer(2.0)
    assert fingerprint(model) == key
    base = base_model(model)
    base.set_attn_implementation({"text_config": "eager"})  # the decoder's kernel alone (as attention capture does)
    assert fingerprint(model) != key
    base.set_attn_implementation({"text_config": "sdpa"})
    assert fingerprint(model) == key
    model.to(torch.float64)
    assert fingerprint(model) != key


def test_a_changed_adapter_state_gets_its_own_pool_and_stays_exact(policy, samples, monkeypatch):
    pytest.importorskip("peft")
    standin_graphs(monkeypatch)
    add_lora(policy, LoRAConfig(r=4))
    with torch.no_grad():
        for n, p in policy.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # adapters that change the logits
    stats = {}
    assert worst(policy, samples[:1], scripts=SCRIPTS[1:3], stats=stats) < 1e-4
    on = kept(policy)["pool"]
    with policy.model.disable_adapter():
        assert worst(policy, samples[:1], scripts=SCRIPTS[1:3], stats=stats) < 1e-4
        assert kept(policy)["pool"] is not on and stats["pools"] == 1 and stats["captures"] > 0
    assert worst(policy, samples[:1], scripts=SCRIPTS[1:3], stats=stats) < 1e-4 and stats["pools"] == 1


def test_adapters_added_or_merged_free_the_pool(policy, samples):
    pytest.importorskip("peft")
    cfg = RolloutConfig(max_new_tokens=4, seed=0)
    rollout(policy, samples[:1], cfg, group_size=2, progress=False)
    assert "pool" in kept(policy)
    add_lora(policy, LoRAConfig(r=4))  # the base's buffers would stay beside the wrapped model's
    assert "pool" not in kept(policy)
    rollout(policy, samples[:1], cfg, group_size=2, progress=False)
    assert "pool" in kept(policy)
    merge(policy)
    assert "pool" not in kept(policy) and not release_pool(policy)


def test_a_step_not_captured_ahead_is_captured_when_reached_and_stays_exact(policy, samples, monkeypatch):
    """The fallback for a step the rollout did not capture ahead (none should reach it): counted, and exact."""
    standin_graphs(monkeypatch)
    monkeypatch.setattr(pools, "WINDOW", 64)
    needed = Pool.needed
    monkeypatch.setattr(Pool, "needed", lambda self, rows, length: needed(self, rows, length)[:1])  # the largest only
    stats = {}
    assert worst(policy, samples[:2], stats=stats) < 1e-4
    assert stats["captures"] > 1 and stats["replays"] > 0
