import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from r3lab.core.batch import collate
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.precision import _fp32_sdpa, autocast


class _Module(torch.nn.Module):
    is_causal = True
    num_key_value_groups = 1


def test_cpu_autocast_runs_attention_in_float32_and_restores_the_registry():
    plain = ALL_ATTENTION_FUNCTIONS["sdpa"]
    with autocast("cpu"):
        assert ALL_ATTENTION_FUNCTIONS["sdpa"] is _fp32_sdpa
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is plain and not torch.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="boom"), autocast("cpu"):
        raise RuntimeError("boom")
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is plain  # restored on an error too
    with autocast("cpu", enabled=False):
        assert ALL_ATTENTION_FUNCTIONS["sdpa"] is plain and not torch.is_autocast_enabled("cpu")


def test_the_float32_attention_is_closer_to_exact_than_bfloat16():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 50, 16, generator=g, dtype=torch.float64) for _ in range(3))
    exact = sdpa_attention_forward(_Module(), q, k, v, None)[0]
    low = [t.to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = _fp32_sdpa(_Module(), *low, None)[0]
        plain = sdpa_attention_forward(_Module(), *low, None)[0]
    assert ours.dtype == torch.bfloat16  # the caller's dtype
    # the same bfloat16 inputs: the float32 kernel differs from exact by output rounding only
    upcast = sdpa_attention_forward(_Module(), *(t.detach().double() for t in low), None)[0]
    assert (ours.double() - upcast).abs().max() <= (plain.double() - upcast).abs().max() + 1e-6
    assert (ours.double() - exact).abs().max() < 0.05
    ours.float().sum().backward()  # gradients reach the bfloat16 inputs
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in low)


def test_a_model_under_cpu_autocast_scores_like_float32():
    policy = tiny_policy()
    trajs = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in toy_samples(2, policy.view)]
    batch = collate(trajs, policy)
    scorer = TokenScorer(policy.model)
    calls = []
    with torch.no_grad():
        full = token_logprobs(scorer, batch)
        with autocast(policy.device):
            ALL_ATTENTION_FUNCTIONS["sdpa"] = lambda *a, **k: calls.append(a[1].dtype) or _fp32_sdpa(*a, **k)
            mixed = token_logprobs(scorer, batch)
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_attention_forward
    assert torch.bfloat16 in calls  # the linear layers ran in bfloat16 (a vision tower may hand on float32)
    m = batch["loss_mask"]
    assert (full[m] - mixed[m]).abs().max() < 0.3
    assert float(full[m].mean()) == pytest.approx(float(mixed[m].mean()), abs=0.05)
