"""capture_attention equals eager attention, changes nothing, cleans up, explains a wrong set-up."""

import pytest
import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

from r3lab.core.batch import collate, model_inputs
from r3lab.explain.capture import IMPL, capture_attention

# `policy` (3 layers, GQA) and `trajs` (two toy trajectories with crops) come from tests/conftest.py


def _inputs(policy, trajs):
    b = collate(trajs, policy)
    return model_inputs(b)


def _eager_attentions(policy, kw):
    model = policy.model
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            return model(**kw, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")


def test_capture_equals_eager_on_selected_layers(policy, trajs):
    kw = _inputs(policy, trajs)  # two rows of different lengths: right padding, a real (non-None) mask
    eager = _eager_attentions(policy, kw)
    with capture_attention(policy, layers=[0, -1], heads=[1, 3], queries="model") as cap:
        cap.forward(trajs)
    rows = cap.records[-1]
    assert len(rows) == 2
    for b, maps in enumerate(rows):
        assert maps.layers == [0, 2] and maps.heads == [1, 3]
        assert maps.weights.dtype == torch.float32 and maps.weights.device.type == "cpu"
        assert len(maps.query_pos) == int(trajs[b].loss_mask().sum())
        for i, layer in enumerate(maps.layers):
            ref = eager[layer][b][[1, 3]][:, maps.query_pos][:, :, maps.image_pos]
            torch.testing.assert_close(maps.weights[i], ref, atol=1e-5, rtol=0)
            torch.testing.assert_close(maps.sink[i], eager[layer][b][[1, 3]][:, maps.query_pos, 0], atol=1e-5, rtol=0)


def test_capture_single_row_without_mask_matches_eager(policy, trajs):
    kw = _inputs(policy, trajs[:1])  # no padding: sdpa_mask returns None and the capture rebuilds causality
    eager = _eager_attentions(policy, kw)
    with capture_attention(policy.model, layers="all", queries="all") as cap:
        with torch.no_grad():
            policy.model(**kw)
    maps = cap.maps
    assert maps.weights.shape[:3] == (3, 4, len(trajs[0].input_ids()))
    for layer in range(3):
        ref = eager[layer][0][:, maps.query_pos][:, :, maps.image_pos]
        torch.testing.assert_close(maps.weights[layer], ref, atol=1e-5, rtol=0)
    # causality: no query sees an image that comes after it
    crop_cols = torch.arange(*maps.spans[1])
    early = maps.query_pos < maps.image_pos[crop_cols[0]]
    assert maps.weights[:, :, early][..., crop_cols].abs().max() == 0


def test_capture_leaves_outputs_unchanged(policy, trajs):
    kw = _inputs(policy, trajs)
    with torch.no_grad():
        before = policy.model(**kw).logits
    with capture_attention(policy, layers="all") as cap:
        with torch.no_grad():
            during = policy.model(**kw).logits
    with torch.no_grad():
        after = policy.model(**kw).logits
    assert torch.equal(before, during) and torch.equal(before, after)
    assert cap.maps.weights.numel() > 0


def test_cleanup_even_when_body_raises(policy, trajs):
    model = policy.model
    hooks = (len(model._forward_pre_hooks), len(model._forward_hooks))
    with pytest.raises(KeyError, match="boom"):
        with capture_attention(policy, layers=[0]) as cap:
            assert model.config.get_text_config()._attn_implementation == IMPL
            assert model.config.vision_config._attn_implementation == "sdpa"  # the vision tower is untouched
            cap.forward(trajs[0])
            raise KeyError("boom")
    assert (len(model._forward_pre_hooks), len(model._forward_hooks)) == hooks
    assert model.config.get_text_config()._attn_implementation == "sdpa"
    assert IMPL not in AttentionInterface._global_mapping and IMPL not in AttentionMaskInterface._global_mapping


def test_nothing_captured_raises_with_the_fix(policy, trajs):
    kw = _inputs(policy, trajs[:1])
    with pytest.raises(RuntimeError, match="captured nothing.*attn_implementation='sdpa'"):
        with capture_attention(policy, layers=[1]):
            # what a fused backend does: the decoder never calls the registered function
            policy.model.set_attn_implementation({"text_config": "sdpa"})
            with torch.no_grad():
                policy.model(**kw)
    assert IMPL not in AttentionInterface._global_mapping
    with pytest.raises(ValueError, match="has 3 layers"):
        with capture_attention(policy, layers=[7]):
            pass
    with pytest.raises(ValueError, match="4 heads"):
        with capture_attention(policy, heads=[9]):
            pass
    with capture_attention(policy) as cap:
        pass
    with pytest.raises(RuntimeError, match="no forward ran"):
        _ = cap.maps


def _family(family):
    from r3lab.model.tiny import TinyConfig, build_tiny
    from r3lab.testing import toy_trajectory

    p = build_tiny(TinyConfig(layers=4, seed=1, patch_size=7, deepstack=(0, 1)), family=family)
    return p, [toy_trajectory(p, size=(448, 336)), toy_trajectory(p, size=(300, 500), crop="square")]


def test_capture_equals_eager_on_qwen3_vl():
    """r3-tiny's family: DeepStack adds vision features into the first layers; attention is still captured exactly."""
    policy, trajs = _family("qwen3_vl")
    eager = _eager_attentions(policy, _inputs(policy, trajs))
    with capture_attention(policy, layers="all", heads=[0, 2], queries="model") as cap:
        cap.forward(trajs)
    for b, maps in enumerate(cap.records[-1]):
        assert maps.layers == [0, 1, 2, 3]
        for i, layer in enumerate(maps.layers):
            ref = eager[layer][b][[0, 2]][:, maps.query_pos][:, :, maps.image_pos]
            torch.testing.assert_close(maps.weights[i], ref, atol=1e-5, rtol=0)


def test_capture_on_qwen3_5_reads_only_its_full_attention_layers_and_says_so():
    policy, trajs = _family("qwen3_5")
    assert policy.model.config.text_config.layer_types == ["linear_attention"] * 3 + ["full_attention"]
    (eager,) = _eager_attentions(policy, _inputs(policy, trajs))  # transformers too returns layer 3's only
    with pytest.warns(UserWarning, match=r"only the full-attention layers \[3\].*\[0, 1, 2\] are Gated-DeltaNet"):
        with capture_attention(policy, layers="all", queries="model") as cap:
            cap.forward(trajs)
    for b, maps in enumerate(cap.records[-1]):
        assert maps.layers == [3]
        ref = eager[b][:, maps.query_pos][:, :, maps.image_pos]
        torch.testing.assert_close(maps.weights[0], ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"layers \[1\] are Gated-DeltaNet.*full-attention layers are \[3\]"):
        with capture_attention(policy, layers=[1, -1]):
            pass


def test_capture_on_smolvlm_folds_tiles_and_the_global_view_onto_one_grid():
    """SmolVLM: an image's tiles and its global view fold onto one cell grid, each image's attention mass kept."""
    from r3lab.model.tiny import TinyConfig, build_tiny
    from r3lab.testing import toy_trajectory

    p = build_tiny(TinyConfig(seed=1, layers=2), family="smolvlm")
    traj = toy_trajectory(p, size=(448, 336))
    kw = _inputs(p, [traj])
    eager = _eager_attentions(p, kw)
    with capture_attention(p, layers=[-1], queries="model") as cap:
        cap.forward(traj)
    maps = cap.maps
    k = 2  # tokens per tile side of the tiny SmolVLM (4 per tile)
    assert maps.grids == [(1, r * k, c * k) for _, r, c in traj.grids()] and maps.merge == 1
    ids = torch.tensor(traj.input_ids())
    starts = torch.tensor([0] + [len(q.ids) for q in traj.pieces]).cumsum(0)
    ref = eager[-1][0][:, maps.query_pos]  # (heads, queries, L)
    for i, q in enumerate([q for q in traj.pieces if q.kind == "image"]):
        k_img = traj.pieces.index(q)
        cols = torch.arange(starts[k_img], starts[k_img + 1])[
            ids[starts[k_img] : starts[k_img + 1]] == p.image_token_id
        ]
        s, e = maps.spans[i]
        torch.testing.assert_close(maps.weights[0][..., s:e].sum(-1), ref[..., cols].sum(-1), atol=1e-5, rtol=0)
    _, rows, cols_ = traj.grids()[1]  # the crop: 2 x 2 tiles; its first cell = tile 0's first token + a quarter
    s = maps.spans[1][0]
    crop_cols = torch.arange(starts[4], starts[5])[ids[starts[4] : starts[5]] == p.image_token_id]
    want = ref[..., crop_cols[0]] + ref[..., crop_cols[rows * cols_ * k * k]] / (rows * cols_)
    torch.testing.assert_close(maps.weights[0][..., s], want, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="reads each image's tiles from its trajectory"):
        with capture_attention(p, layers=[-1]):
            with torch.no_grad():
                p.model(**kw)
