"""The static cache and its replayed decode step, on this CPU: exact against one full forward, and a replay with a
stale input (a changed position or id, a dropped row, another image) is caught. CUDA-graph capture is stood in for
by the step function itself (tests/engine/conftest.py), which reads only the static buffers, as a graph does."""

import collections
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from r3lab.core.batch import collate, model_inputs
from r3lab.core.crop_calls import format_crop_call as call
from r3lab.data.sample import Sample
from r3lab.engine import pool as pools
from r3lab.engine.config import RolloutConfig
from r3lab.engine.pool import bucket, kept, release_pool, window
from r3lab.engine.rollouts import rollout
from r3lab.engine.static_cache import StaticSharedCache
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

from .conftest import standin_graphs

CFG = RolloutConfig(greedy=True, max_new_tokens=70, max_segment_tokens=50, cache="static")
SCRIPTS = [  # row 0 finishes first (the rows behind it move up), the others crop at different steps
    ["<answer>red</answer><|im_end|>"],
    [" a a a a a a a", call((20, 20, 80, 70)), " b", call((0, 0, 40, 40))],
    [call((10, 10, 60, 50)), " a"],
    [" a a", call((50, 50, 10, 10)), " c c c", call((30, 30, 70, 90)), " d"],
]


@pytest.fixture(scope="module")
def policy():
    return build_tiny(TinyConfig(seed=3))


@pytest.fixture(scope="module")
def samples():
    return [
        Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0"),
        Sample(toy_image((200, 300), 1), "Which shape is blue?", ["square"], sample_id="s1"),
        Sample(toy_image((336, 448), 5), "What colour is the square?", ["blue"], sample_id="s2"),
    ]


def worst(policy, samples, cfg=CFG, scripts=SCRIPTS, group_size=2, stats=None) -> float:
    """Max |logit - full forward| over every chosen token of every row (and the trajectories are complete)."""
    rec = collections.defaultdict(list)
    out = rollout(
        policy,
        samples,
        cfg,
        group_size=group_size,
        scripts=scripts,
        progress=False,
        stats=stats,
        logits_hook=lambda ids, lg: [rec[i].append(r.clone()) for i, r in zip(ids, lg)],
    )
    diff = 0.0
    for i, traj in enumerate(out):
        b = collate([traj], policy)
        with torch.no_grad():
            full = policy.model(**model_inputs(b)).logits[0].float()
        idx = b["loss_mask"][0].nonzero().squeeze(-1)
        diff = max(diff, (torch.stack(rec[i]) - full[idx - 1]).abs().max().item())
    return diff


def qwen2_vl():
    """A tiny Qwen2-VL: r3-tiny's language model under a Qwen2-VL vision tower (random)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from r3lab.model.policy import Policy

    p = build_tiny(TinyConfig(seed=3))
    c, vc = p.model.config, p.model.config.vision_config
    text = c.text_config.to_dict()
    text.pop("model_type", None)
    cfg = Qwen2VLConfig(
        text_config=text,
        vision_config=dict(
            depth=vc.depth,
            embed_dim=vc.hidden_size,
            hidden_size=text["hidden_size"],
            mlp_ratio=2,
            num_heads=vc.num_heads,
            patch_size=vc.patch_size,
            spatial_merge_size=vc.spatial_merge_size,
            temporal_patch_size=2,
            in_channels=3,
        ),
        image_token_id=c.image_token_id,
        video_token_id=c.video_token_id,
        vision_start_token_id=c.vision_start_token_id,
        vision_end_token_id=c.vision_end_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(cfg).eval()
    model.load_state_dict({k: v for k, v in p.model.state_dict().items() if "visual" not in k}, strict=False)
    return Policy(model, p.tokenizer, p.image_processor, p.view, p.prompt)


def test_qwen2_vl_rows_cropping_at_different_steps_stay_exact(samples, cache):
    p = qwen2_vl()
    assert type(p.model).__name__ == "Qwen2VLForConditionalGeneration"
    assert worst(p, samples[:2], replace(CFG, cache=cache, compact_holes=0.0)) < 1e-4


def test_replayed_steps_are_exact_and_bucketed(policy, samples, monkeypatch):
    captured = standin_graphs(monkeypatch)
    release_pool(policy)
    stats = {}
    assert worst(policy, samples[:2], stats=stats) < 1e-4
    # 4 rows, then 3 (row 0 done: bucket 4 with one dummy row), ...: every decode step is a replay
    assert stats["captures"] == len(captured) >= 1 and stats["replays"] > 40 and stats["cache"] == "static"
    assert stats["graphs"] == "on" and stats["pool"]["steps"] == len(captured) and not stats["pool"]["broken"]
    assert [bucket(n, 64) for n in (1, 2, 3, 5, 8, 9, 33, 64)] == [1, 2, 4, 8, 8, 16, 40, 64] and bucket(9, 12) == 12
    assert [window(n, 1000) for n in (1, 256, 257, 600, 999)] == [256, 256, 512, 1000, 1000]


def test_a_stale_position_id_or_row_is_caught(policy, samples, monkeypatch):
    """The exactness check above fails when a replay reads last step's positions or ids, or rows that moved."""
    standin_graphs(monkeypatch)
    assert worst(policy, samples[:2]) < 1e-4
    decode, select = StaticSharedCache._decode, StaticSharedCache.select

    def stale(name):  # the step reads last step's positions or ids: the engine "forgot" to write this step's
        def run(self, slot):
            buf = getattr(self.pool, name)[..., : self._B, :]
            last = self.__dict__.get("_last")
            if last is not None and last.shape == buf.shape:
                buf.copy_(last)
            self._last = buf.clone()
            return decode(self, slot)

        run.__name__ = f"stale_{name}"
        return run

    def rows_not_moved(self, rows, idx=None):  # the bookkeeping of a dropped row without moving its followers' keys
        self._B = len(rows)
        self._keep_rows(list(rows))

    for name, fn in (("_decode", stale("pos")), ("_decode", stale("ids")), ("select", rows_not_moved)):
        with monkeypatch.context() as m:
            m.setattr(StaticSharedCache, name, fn)
            assert worst(policy, samples[:2]) > 1e-2, fn.__name__
    assert (decode, select) == (StaticSharedCache._decode, StaticSharedCache.select)


def test_the_kept_buffers_serve_another_image_and_a_stale_one_is_caught(policy, samples, monkeypatch):
    """Buffers and steps are kept between rollouts; the next prompts' keys must move into them."""
    standin_graphs(monkeypatch)
    release_pool(policy)
    assert worst(policy, samples[:1], scripts=SCRIPTS[1:3]) < 1e-4
    pool = kept(policy)["pool"]
    stats = {}
    assert worst(policy, samples[2:], scripts=SCRIPTS[1:3], stats=stats) < 1e-4  # another image, same buffers
    assert kept(policy)["pool"] is pool and pool.steps and stats["pools"] == stats["captures"] == 0
    moved_in = StaticSharedCache.from_prefill.__func__

    def keys_left_stale(cls, prefill, *a, **kw):  # the new prompts' keys never reach the buffers: the last ones stay
        old = [(k.clone(), v.clone()) for k, v in kept(prefill.policy)["pool"].kv]
        sc = moved_in(cls, prefill, *a, **kw)
        assert sc.pool is pool
        for (k, v), (k0, v0) in zip(sc.pool.kv, old):
            k.copy_(k0)
            v.copy_(v0)
        return sc

    with monkeypatch.context() as m:
        m.setattr(StaticSharedCache, "from_prefill", classmethod(keys_left_stale))
        assert worst(policy, samples[:1], scripts=SCRIPTS[1:3]) > 1e-2


def test_buffers_grow_when_holes_outrun_them_and_moved_weights_get_new_ones(policy, samples, monkeypatch):
    standin_graphs(monkeypatch)
    release_pool(policy)
    monkeypatch.setattr(pools, "ALIGN", 1)
    monkeypatch.setattr("r3lab.engine.rollouts.reserve", lambda policy, cfg: 1)
    stats = {}
    assert worst(policy, samples[:2], replace(CFG, compact_holes=1.0), stats=stats) < 1e-4
    assert stats["regrows"] >= 1 and stats["pools"] == 1 + stats["regrows"]
    pool = kept(policy)["pool"]
    # the same weights at new addresses: graphs would read freed memory
    policy.model.to(torch.float64).to(torch.float32)
    assert worst(policy, samples[:1], scripts=SCRIPTS[1:3]) < 1e-4
    assert kept(policy)["pool"] is not pool
    assert release_pool(policy) and not release_pool(policy)


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func).split(".")[1])
        return func(*args, **(kwargs or {}))


# reading a value back on the host, a shape that depends on values, a tensor built from host data: on a GPU each one
# synchronises or copies from the host, which a CUDA graph cannot record
HOST_SYNC = {
    "_local_scalar_dense",
    "item",
    "is_nonzero",
    "nonzero",
    "masked_select",
    "lift_fresh",
    "equal",
    "_assert_async",
    "unique",
    "_unique2",
    "index_put_",
    "scalar_tensor",
}


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "smolvlm", "qwen2_vl"])
def test_the_captured_step_never_syncs_with_the_host(samples, monkeypatch, family):
    captured = standin_graphs(monkeypatch)
    p = (
        qwen2_vl()
        if family == "qwen2_vl"
        else build_tiny(TinyConfig(seed=3, patch_size=7 if family == "qwen3_vl" else 14), family=family)
    )
    rollout(p, samples[:1], RolloutConfig(max_new_tokens=3, cache="static", seed=0), group_size=3, progress=False)
    with torch.inference_mode(), _Ops() as ops:
        captured[0]()
    assert {"scaled_dot_product_attention", "index_copy_", "linear"} <= ops.seen and not ops.seen & HOST_SYNC


def test_timing_breaks_the_cost_down(policy, samples, cache):
    stats = {}
    rollout(
        policy,
        samples[:2],
        replace(CFG, cache=cache, timing=True),
        group_size=2,
        scripts=SCRIPTS,
        stats=stats,
        progress=False,
    )
    t = stats["timing"]
    parts = [k for k in t if k.endswith("_s") and k != "total_s"]
    assert {
        "vision_main_s",
        "prefill_main_s",
        "vision_crops_s",
        "crop_prefill_s",
        "decode_s",
        "sampling_s",
        "environment_s",
        "host_s",
    } <= set(parts)
    assert all(t[k] >= 0 for k in parts) and abs(sum(t[k] for k in parts) - t["total_s"]) < 1e-3
    assert t["vision_main_s"] > 0 and t["vision_crops_s"] > 0 and t["decode_s"] > 0
    # a record per step that inserted crops: SCRIPTS make 0 + 2 + 1 + 1 (one call refused), each at its own step
    assert [c["crops"] for c in t["crops"]] == [1, 1, 1, 1] and all(c["vision_s"] > 0 for c in t["crops"])
    stats = {}
    rollout(
        policy, samples[:1], replace(CFG, cache=cache), group_size=1, scripts=SCRIPTS[2:3], stats=stats, progress=False
    )
    assert "timing" not in stats


def test_cache_settings_are_checked(policy, samples):
    with pytest.raises(ValueError, match=r"RolloutConfig\.cache = 'paged' is not allowed"):
        RolloutConfig(cache="paged")
    with pytest.raises(ValueError, match=r"RolloutConfig\.cuda_graphs = 'yes' is not allowed"):
        RolloutConfig(cuda_graphs="yes")
    with pytest.raises(ValueError, match="needs cache='static'"):
        RolloutConfig(cache="dynamic", cuda_graphs=True)
    with pytest.raises(ValueError, match="cuda_graphs = True needs a CUDA device, but the policy is on cpu"):
        rollout(policy, samples[:1], RolloutConfig(cache="static", cuda_graphs=True), group_size=1, progress=False)
    stats = {}
    rollout(policy, samples[:1], RolloutConfig(max_new_tokens=4, seed=0), group_size=1, progress=False, stats=stats)
    assert stats["cache"] == "static" and stats["replays"] == 0  # the default: static buffers, no CUDA graphs here


def test_a_capture_that_fails_warns_and_decodes_eagerly(policy, samples, monkeypatch):
    """cuda_graphs="auto": a model whose step cannot be recorded still rolls out, exactly; True would raise."""
    standin_graphs(monkeypatch, fail="operation not permitted when stream is capturing")
    release_pool(policy)
    stats = {}
    with pytest.warns(UserWarning, match="capturing the decode step as a CUDA graph failed.*decode eagerly"):
        assert worst(policy, samples[:2], stats=stats) < 1e-4
    assert stats["captures"] == stats["replays"] == 0 and kept(policy)["pool"].broken
    assert stats["graphs"] == "broken: RuntimeError: operation not permitted when stream is capturing"  # one line
    release_pool(policy)
    with pytest.raises(RuntimeError, match="stream is capturing"):
        worst(policy, samples[:1], replace(CFG, cuda_graphs=True), scripts=SCRIPTS[1:3])
