import math

import pytest
import torch

from r3lab.core.batch import collate
from r3lab.core.crop_calls import find_crop_calls
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.config import RGRPOConfig
from r3lab.train.rgrpo import group_advantages, policy_loss, scripted_rollout, setup, train, train_step


def script(sample, j, step):
    """Row j of a group: even rows answer right, odd rows wrong; every row crops the sample's region."""
    call = find_crop_calls(sample.rationale[0].text)[0].raw
    a = sample.answer if j % 2 == 0 else "purple"
    return ["<think>look ", call, f" it is {a}.</think><answer>{a}</answer><|im_end|>"]


def small(**kw) -> RGRPOConfig:
    base = dict(
        steps=2,
        group_size=2,
        batch_size=4,
        micro_rows=4,
        lr_lm=1e-2,
        lr_merger=1e-2,
        lr_vision=1e-2,
        rollout={"max_new_tokens": 48, "max_segment_tokens": 40},
    )
    return RGRPOConfig(**(base | kw))


# -- the KL term -------------------------------------------------------------------------------------
def test_kl_is_the_k3_estimate_of_kl_to_the_reference_in_its_direction():
    """k3 = exp(ref - logp) - (ref - logp) - 1 (Schulman's estimator of KL(policy || reference)): with
    p = 0.5 and p_ref = 0.25 it is 0.5 + ln 2 - 1; the flipped estimate would give 1 - ln 2."""
    logp, ref = torch.log(torch.tensor([[0.5]])), torch.log(torch.tensor([[0.25]]))
    logp.requires_grad_(True)
    mask = torch.ones(1, 1, dtype=torch.bool)
    loss, st = policy_loss(logp, logp.detach(), torch.zeros(1), mask, beta=0.1, ref_logp=ref)
    k3 = 0.5 + math.log(2) - 1
    assert st["kl"] == pytest.approx(k3, abs=1e-6) and loss.item() == pytest.approx(0.1 * k3, abs=1e-6)
    loss.backward()  # d k3 / d logp = 1 - p_ref / p: pulls logp down towards the reference
    assert logp.grad.item() == pytest.approx(0.1 * (1 - 0.5), abs=1e-6)
    same, st = policy_loss(ref.clone(), ref, torch.zeros(1), mask, beta=0.1, ref_logp=ref)
    assert st["kl"] == 0.0 and same.item() == 0.0
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, logp.detach(), torch.zeros(1), mask, beta=0.1)


# -- advantages --------------------------------------------------------------------------------------
def test_group_advantages_per_group_and_zero_std():
    r = torch.tensor([1.0, 0.0, 0.5, 0.5, 2.0, 0.0, 1.0, 3.0])
    adv, zero = group_advantages(r, 2, eps=0.0)
    assert zero.tolist() == [False, True, False, False]
    assert adv[2:4].tolist() == [0.0, 0.0]  # equal rewards: no signal
    for g in (0, 2, 3):
        a = adv[2 * g : 2 * g + 2]
        assert a.sum().abs() < 1e-6 and a.std().item() == pytest.approx(1.0, abs=1e-5)
    adv4, zero4 = group_advantages(r, 4)  # groups are contiguous blocks of G
    assert zero4.tolist() == [False, False]
    assert adv4[:4].tolist() == pytest.approx(((r[:4] - r[:4].mean()) / (r[:4].std() + 1e-4)).tolist())
    unscaled, _ = group_advantages(r, 2, scale=False)
    assert unscaled[:2].tolist() == [0.5, -0.5]


def test_group_size_errors_are_clear():
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages([1.0, 2.0], 1)
    with pytest.raises(ValueError, match="groups of group_size=2"):
        group_advantages([1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        RGRPOConfig(group_size=1, batch_size=4).validate()
    with pytest.raises(ValueError, match="multiple of group_size"):
        RGRPOConfig(group_size=4, batch_size=6).validate()
    with pytest.raises(ValueError, match="loss_agg"):
        RGRPOConfig(loss_agg="mean").validate()
    with pytest.raises(ValueError, match="preset"):
        RGRPOConfig(reward={"preset": "judge"}).validate()


# -- the loss --------------------------------------------------------------------------------------
def test_loss_gradient_only_on_model_text_tokens():
    policy = tiny_policy()
    trajs = []
    for s in toy_samples(2, policy.view):
        t = s.reference(policy.view, policy.prompt).tokenize(policy)
        trajs.append(t)
    batch = collate(trajs, policy)
    mask = batch["loss_mask"]
    logp = token_logprobs(TokenScorer(policy.model), batch).detach().requires_grad_(True)
    old = torch.where(mask, logp.detach() - 0.05, torch.full_like(logp, float("nan")))  # ratio != 1, NaN off-mask
    adv = torch.tensor([1.0, -0.7])
    loss, _ = policy_loss(logp, old, adv, mask, beta=0.1, ref_logp=logp.detach() + 0.3)
    loss.backward()
    g = logp.grad
    assert torch.isfinite(loss)
    assert (g[~mask] == 0).all()  # image, prompt and env_text tokens: exactly zero
    first = mask.clone()
    first[:, 0] = False
    assert (g[first] != 0).all()  # every model_text token gets a gradient
    kinds = [k for t in trajs for k in t.token_kinds()]
    assert "image" in kinds and "env_text" in kinds


def test_clip_binds_where_it_should():
    # four tokens of one row each: (ratio, advantage) -> clipped?
    cases = [(1.5, 1.0, True), (1.1, 1.0, False), (0.5, -1.0, True), (1.5, -1.0, False), (0.5, 1.0, False)]
    logp = torch.zeros(len(cases), 1, requires_grad=True)
    old = torch.tensor([[-math.log(r)] for r, _, _ in cases])
    adv = torch.tensor([a for _, a, _ in cases])
    mask = torch.ones(len(cases), 1, dtype=torch.bool)
    loss, st = policy_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28)
    loss.backward()
    for i, (r, a, clipped) in enumerate(cases):
        assert (logp.grad[i, 0] == 0) == clipped, (r, a)
        if not clipped:  # d/dlogp of -r*A/n = -r*A/n
            assert logp.grad[i, 0].item() == pytest.approx(-r * a / len(cases), rel=1e-5)
    assert st["clipped"] == 2
    expected = -sum(min(r * a, min(max(r, 0.8), 1.28) * a) for r, a, _ in cases) / len(cases)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ratio_one_is_reinforce_and_aggregation_modes_differ():
    logp = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    adv = torch.tensor([1.0, -2.0])
    tok, _ = policy_loss(logp, logp.detach(), adv, mask, agg="token")
    seq, _ = policy_loss(logp, logp.detach(), adv, mask, agg="sequence")
    assert tok.item() == pytest.approx(-(3 * 1.0 - 2.0) / 4)
    assert seq.item() == pytest.approx(-(1.0 - 2.0) / 2)
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, logp.detach(), adv, mask, beta=0.1)
    kl0, st = policy_loss(logp, logp.detach(), torch.zeros(2), mask, beta=1.0, ref_logp=logp.detach())
    assert kl0.item() == 0 and st["kl"] == 0  # k3 vanishes when the policy equals the reference


# -- the loop ----------------------------------------------------------------------------------------
def test_train_step_updates_all_trainable_and_no_frozen_parameters():
    policy = tiny_policy(fresh=True)
    cfg = small(freeze_vision=True, freeze_merger=False, inner_epochs=2)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    log = train(policy, toy_samples(4, policy.view), cfg, rollout_fn=scripted_rollout(script))
    assert len(log) == 2
    row = log.rows[0]
    assert row["reward/accuracy"] == 0.5 and row["frac_zero_std"] == 0.0 and row["crops_per_rollout"] == 1.0
    assert row["crop_iou"] > 0 and row["invalid_crop_rate"] == 0.0
    assert row["ratio_mean"] != 1.0  # the second inner epoch sees a moved policy
    assert row["kl"] is None and log.rows[0]["frac_zero_std"] == 0.0  # no reference model, so no KL to report
    for n, p in policy.model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        if ".visual." in n and ".merger." not in n:
            assert not changed and not p.requires_grad, n
        else:
            assert changed, n


def test_reference_model_exists_only_with_beta():
    policy = tiny_policy(fresh=True)
    assert setup(policy, small()).ref is None
    state = setup(policy, small(beta=0.05))
    assert state.ref is not None and not any(p.requires_grad for p in state.ref.parameters())
    row = train_step(state, toy_samples(2, policy.view), scripted_rollout(script))
    assert row["kl"] >= 0


def test_recorded_logprobs_match_the_teacher_forced_recompute():
    policy = tiny_policy()
    state = setup(policy, small(lr_lm=0.0, lr_merger=0.0, lr_vision=1e-9, freeze_vision=False))
    trajs = scripted_rollout(script)(policy, toy_samples(2, policy.view), state)
    batch = collate(trajs, policy)
    with torch.no_grad():
        fresh = token_logprobs(state.scorer, batch)
    m = batch["loss_mask"]
    assert (fresh[m] - batch["old_logprobs"][m]).abs().max() < 1e-4


@pytest.mark.slow
def test_short_rgrpo_run_raises_mean_reward():
    """r3-tiny from scratch, the prompt forced up to "<answer>": reward = the answer names a colour.

    Mean reward over fixed-seed rollouts rises from chance (a few %) to most of the group.
    """
    from r3lab.core.answer import extract_answer
    from r3lab.data.vocab import COLOURS
    from r3lab.engine.config import RolloutConfig
    from r3lab.engine.rollouts import rollout
    from r3lab.train.rewards import RewardTerm, score

    def names_colour(prompts, completions, **kw):
        return [float(any(c in (extract_answer(x) or "").lower() for c in COLOURS)) for x in completions]

    torch.manual_seed(0)
    policy = tiny_policy(fresh=True)
    samples = toy_samples(4, policy.view)
    prefix = "<think>The mark is small.</think><answer>"
    n = len(policy.encode(prefix)) + 3  # three sampled tokens after the forced prefix
    terms = [RewardTerm("colour", names_colour)]

    def held_out():
        cfg = RolloutConfig(group_size=8, max_new_tokens=n, max_segment_tokens=n, seed=1234)
        trajs = rollout(policy, samples, cfg, scripts=[prefix] * len(samples), progress=False)
        return sum(score(trajs, terms).total) / len(trajs)

    before = held_out()
    cfg = RGRPOConfig(
        steps=12,
        group_size=8,
        batch_size=16,
        micro_rows=16,
        lr_lm=1e-2,
        rollout={"max_new_tokens": n, "max_segment_tokens": n},
        seed=1,
    )
    log = train(policy, samples, cfg, terms=terms, rollout_fn=scripted_rollout(lambda s, j, step: prefix))
    after = held_out()
    assert before < 0.3 and after > before + 0.3, (before, after, log.series("reward"))


@pytest.mark.parametrize(
    "family,style",
    [("qwen3_vl", ("relative", "tool")), ("qwen3_5", ("relative", "json")), ("smolvlm", ("relative", "json"))],
)
def test_one_rgrpo_step_trains_the_2026_families(family, style):
    """R-GRPO on a Qwen3-VL writing Qwen3-VL's own zoom tool in 0-1000, and on a Qwen3.5 (reference-mode rollouts):
    crops act, the region reward sees them, and every trainable parameter moves."""
    import warnings

    from r3lab.core.crop_calls import CallStyle
    from r3lab.core.prompt import PromptConfig
    from r3lab.data.call_styles import restyle
    from r3lab.model.tiny import TinyConfig, build_tiny

    calls = CallStyle(*style)
    policy = build_tiny(
        TinyConfig(patch_size=7, layers=4, deepstack=(0, 1), seed=2), family=family, prompt=PromptConfig(calls=calls)
    )
    samples = [restyle(s, calls, policy.view) for s in toy_samples(2, policy.view)]

    def styled_script(sample, j, step):
        call = find_crop_calls(sample.rationale[0].text, style=calls)[0].raw
        a = sample.answer if j % 2 == 0 else "purple"
        return ["<think>look ", call, f" it is {a}.</think><answer>{a}</answer><|im_end|>"]

    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Qwen3.5 says it runs in reference mode (tests/engine)
        log = train(
            policy,
            samples,
            small(steps=1, batch_size=2, rollout={"max_new_tokens": 120, "max_segment_tokens": 100}),
            rollout_fn=scripted_rollout(styled_script),
        )
    row = log.rows[0]
    assert row["crops_per_rollout"] == 1.0 and row["invalid_crop_rate"] == 0.0 and row["crop_iou"] > 0
    assert row["reward/accuracy"] == 0.5 and math.isfinite(row["loss"])
    trained = [(n, p) for n, p in policy.model.named_parameters() if p.requires_grad]
    assert len(trained) > 10  # the vision tower (and merger) are frozen by default: the language model trains
    unmoved = [n for n, p in trained if torch.equal(before[n], p.detach())]
    assert not unmoved, unmoved


@pytest.mark.parametrize("advantages", [[1.0, -1.0, 0.0, 0.0, 0.5, -0.5], [0.0] * 6])
def test_rows_without_a_signal_are_skipped_and_the_step_is_the_same(monkeypatch, advantages):
    """A group of equal rewards has advantage 0 and no gradient (beta = 0): the update skips its rows (keeping
    their tokens in the denominator) and steps exactly as the update over every row does."""
    import r3lab.train.rgrpo as rg

    def one_update(skip):
        policy = tiny_policy(fresh=True)
        state = setup(policy, small(group_size=2, batch_size=6, micro_rows=2, optimizer="sgd"))  # sgd: exact
        trajs = scripted_rollout(script)(policy, toy_samples(3, policy.view), state)
        ran = []
        real = rg.collate
        monkeypatch.setattr(rg, "collate", lambda ts, p: ran.append(len(ts)) or real(ts, p))
        if not skip:
            monkeypatch.setattr(rg, "signal_rows", lambda adv, beta, lengths: list(range(len(lengths))))
        row = rg.update(state, trajs, torch.tensor(advantages))
        monkeypatch.undo()
        return dict(policy.model.named_parameters()), row, sum(ran)

    (skipped, row, ran), (full, row_full, ran_full) = one_update(True), one_update(False)
    assert ran_full == 6 and ran == max(1, sum(a != 0 for a in advantages))
    assert max((skipped[n] - full[n]).abs().max().item() for n in full) < 1e-6
    assert row["loss"] == pytest.approx(row_full["loss"], abs=1e-6)
    assert row["batch_tokens"] == row_full["batch_tokens"]  # the step's tokens, skipped rows too
    assert rg.signal_rows(torch.tensor([0.0, 0.0]), 0.1, [5, 3]) == [0, 1]  # with a KL term every row has a gradient
    assert rg.signal_rows(torch.tensor([0.0, 0.0, 0.0]), 0.0, [5, 3, 4]) == [1]  # none: the shortest still runs
