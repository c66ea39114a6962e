"""A rollout's prompts against the model's positions and this machine's free memory, before any work."""

import pytest

from r3lab.engine import budget
from r3lab.engine.config import RolloutConfig
from r3lab.engine.rollouts import rollout
from r3lab.testing import tiny_policy, toy_samples


def _long(n_chars: int):
    policy = tiny_policy()
    samples = toy_samples(3, policy.view)
    samples[1].question = "What is it? " + "Z" * n_chars
    return policy, samples


def test_a_padded_prefill_larger_than_half_the_free_memory_is_refused_with_its_estimate(monkeypatch):
    policy, samples = _long(2000)
    monkeypatch.setattr(budget, "free_memory", lambda: 64 << 20)  # 64 MiB free: 3 x 2000^2 x 8 B is 92 MiB
    with pytest.raises(
        ValueError,
        match=r"sample 'toy1': its prompt is 2,\d{3} tokens; a prefill of 3 prompts .* "
        r"GiB, more than half of the 0\.1 GiB .*batch_rows",
    ):
        rollout(policy, samples, RolloutConfig(max_new_tokens=4, group_size=1), progress=False)
    # one prompt a prefill has no padding mask: its memory is linear in its length, so it runs
    out = rollout(policy, samples, RolloutConfig(max_new_tokens=4, group_size=1, batch_rows=1), progress=False)
    assert len(out) == 3


def test_a_prompt_and_its_answer_budget_past_the_models_positions_is_refused():
    policy, samples = _long(10)
    n = len(samples[1].prompt(policy.view, policy.prompt).tokenize(policy).input_ids())
    cfg = RolloutConfig(max_new_tokens=policy.context_length - n + 1, max_segment_tokens=8, group_size=1)
    with pytest.raises(
        ValueError,
        match=rf"sample 'toy1': its prompt is {n} tokens, and with max_new_tokens = "
        r"[\d,]+ a rollout needs 32,769 positions, more than the 32,768",
    ):
        rollout(policy, samples, cfg, progress=False)


def test_free_memory_reads_this_machine():
    free = budget.free_memory()
    assert free is None or free > 0


def test_free_memory_counts_an_address_space_limit():
    """Under `ulimit -v` (a memory cap) the estimate is held to what the process may still map."""
    import subprocess
    import sys

    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "from r3lab.engine.budget import free_memory; print(free_memory())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 0 < int(out) <= 2 << 30
