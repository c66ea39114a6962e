"""Teacher-forced log-probs gathered at the asked positions equal a full forward's."""

import pytest
import torch

from r3lab.core.batch import collate, model_inputs
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.testing import tiny_policy, toy_samples


def _batch(policy, n=2):
    trajs = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in toy_samples(n, policy.view)]
    return trajs, collate(trajs, policy)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logprobs_equal_a_full_forward_and_only_where_labelled(temperature):
    policy = tiny_policy()
    trajs, b = _batch(policy)
    lp = token_logprobs(TokenScorer(policy.model), b, temperature)
    with torch.no_grad():
        logits = policy.model(**model_inputs(b)).logits
    full = torch.log_softmax(logits[:, :-1].float() / temperature, -1).gather(-1, b["input_ids"][:, 1:, None])[..., 0]
    m = b["loss_mask"]
    assert (lp[:, 1:][m[:, 1:]] - full[m[:, 1:]]).abs().max() < 1e-5
    assert (lp[~m] == 0).all()
    labels = [t.labels() for t in trajs]  # the Trajectory decides what is supervised
    for row, lab in enumerate(labels):
        assert torch.equal(m[row, : len(lab)], lab != -100)


def test_a_mask_scores_other_positions_than_the_loss_mask():
    policy = tiny_policy()
    _, b = _batch(policy, 1)
    mask = torch.zeros_like(b["loss_mask"])
    mask[0, [5, 9]] = True
    lp = token_logprobs(TokenScorer(policy.model), b, mask=mask)
    assert lp[0, 5] < 0 and lp[0, 9] < 0 and (lp[~mask] == 0).all()
    with pytest.raises(TypeError, match="TokenScorer"):
        token_logprobs(policy.model.forward, b)
