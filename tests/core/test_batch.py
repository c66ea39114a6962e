import pytest
import torch

from r3lab.core.batch import MODEL_INPUTS, by_length, collate, model_inputs
from r3lab.testing import tiny_policy

from .test_trajectory import make


@pytest.mark.parametrize("left", [False, True])
def test_collate_padding_does_not_change_logits(left):
    policy = tiny_policy()
    a, b = make(policy, ()), make(policy, ((10, 10, 40, 40), (60, 40, 100, 80)))
    batch = collate([a, b], policy, left_pad=left)

    def fwd(bt):
        return policy.model(**model_inputs(bt)).logits

    with torch.no_grad():
        both = fwd(batch)
        for row, t in enumerate((a, b)):
            alone = fwd(collate([t], policy))[0]
            n = len(t.input_ids())
            got = both[row, -n:] if left else both[row, :n]
            assert (got - alone).abs().max() < 1e-5
    assert batch["loss_mask"].sum() == a.loss_mask().sum() + b.loss_mask().sum()


def test_model_inputs_are_what_the_forward_takes():
    policy = tiny_policy()
    batch = collate([make(policy)], policy)
    assert set(model_inputs(batch)) == set(MODEL_INPUTS)  # masks and recorded log-probs stay out
    assert {"loss_mask", "old_logprobs"} <= set(batch) - set(model_inputs(batch))
    text_only = {k: v for k, v in batch.items() if k not in ("pixel_values", "image_grid_thw")}
    assert set(model_inputs(text_only)) == set(MODEL_INPUTS) - {"pixel_values", "image_grid_thw"}


def test_smolvlm_batch_has_1d_positions_and_its_tiles_in_one_image_batch():
    from r3lab.model.tiny import build_tiny

    policy = build_tiny(family="smolvlm")
    trajs = [make(policy), make(policy)]
    batch = collate(trajs, policy)
    assert set(model_inputs(batch)) == {"input_ids", "attention_mask", "position_ids", "pixel_values"}
    B, L = batch["input_ids"].shape
    assert batch["position_ids"].shape == (B, L)
    n = int(batch["attention_mask"][0].sum())
    assert batch["position_ids"][0, :n].tolist() == list(range(n))  # right padding: positions from 0
    tiles = sum(1 if r * c == 1 else r * c + 1 for t in trajs for _, r, c in t.grids())
    assert batch["pixel_values"].shape[:2] == (1, tiles)
    images = sum(policy.image_token_count(g) for t in trajs for g in t.grids())
    assert int((batch["input_ids"] == policy.image_token_id).sum()) == images


def test_by_length_puts_rows_of_similar_length_together():
    lengths = [400, 130, 250, 395, 128, 260, 401]
    for parts in (1, 2, 3, 7):
        groups = by_length(lengths, parts=parts)
        assert len(groups) == parts and sorted(i for g in groups for i in g) == list(range(len(lengths)))
        assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1
        flat = [lengths[i] for g in groups for i in g]
        assert flat == sorted(lengths)  # each group a run of the sorted lengths
    assert by_length(lengths, rows=3) == [[4, 1, 2], [5, 3, 0], [6]]
    assert by_length([5, 5, 5], parts=2) == [[0, 1], [2]]  # ties keep their order (stable, deterministic)
    assert by_length([1], parts=4) == [[0]]  # never an empty group

    def padded(gs):
        return sum(max(lengths[i] for i in g) * len(g) for g in gs)

    assert padded(by_length(lengths, parts=2)) < padded([[0, 1, 2, 3], [4, 5, 6]])
    for bad in (dict(), dict(parts=2, rows=2), dict(parts=-1)):
        with pytest.raises(ValueError, match="parts or rows"):
            by_length(lengths, **bad)
