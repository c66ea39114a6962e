"""The audit's rollout variants through the engine (format-only, dummy crop, result-only), exact against one full
forward; the majority vote, the tool-only solved set and its chance levels; cost per correct answer."""

import math

import pytest
import torch

from r3lab.audit.audit import (
    AuditSettings,
    GivenCrops,
    audit_rollouts,
    audit_table,
    dummy_tokens,
    majority,
    markers_only,
    wilson,
)
from r3lab.core.batch import collate, model_inputs
from r3lab.core.crop_calls import format_crop_call
from r3lab.core.trajectory import ENV, IMAGE
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig, RolloutSettings
from r3lab.engine.rollouts import rollout
from r3lab.evaluation.chance import chance_of
from r3lab.evaluation.cost import VisionClock, by_family, cost_rows, spent
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

GREEDY = RolloutConfig(greedy=True, max_crops=2, max_new_tokens=60, max_segment_tokens=40)


@pytest.fixture(scope="module")
def policy():
    return build_tiny(TinyConfig(seed=3))  # logits of a few units: a 1e-4 check means something


@pytest.fixture(scope="module")
def samples():
    return [
        Sample(
            toy_image((448, 336), 0),
            "What colour is the disc?",
            ["red"],
            [(40, 30, 160, 150)],
            family="read_one",
            sample_id="s0",
        ),
        Sample(toy_image((200, 300), 1), "Which shape is blue?", ["square"], family="control", sample_id="s1"),
    ]


def script(*boxes):
    out = []
    for b in boxes:
        out += [" look", format_crop_call(b)]
    return out + [" so"]


def exact(policy, traj):
    """Recorded log-probs against one teacher-forced forward over the finished trajectory."""
    b = collate([traj], policy)
    with torch.no_grad():
        lg = policy.model(**model_inputs(b)).logits[0].float()
    idx = b["loss_mask"][0].nonzero().squeeze(-1)
    lp = torch.log_softmax(lg[idx - 1], -1).gather(-1, b["input_ids"][0, idx, None]).squeeze(-1)
    return (lp - b["old_logprobs"][0, idx]).abs().max().item()


def test_format_only_answers_the_call_with_the_markers_alone_exactly(policy, samples):
    (t,) = rollout(
        policy,
        samples[:1],
        GREEDY,
        group_size=1,
        scripts=[script((10, 10, 60, 50))],
        progress=False,
        crop_ids=markers_only(policy),
    )
    ev = t.events[0]
    piece = t.pieces[ev.image_piece]
    assert ev.ok and piece.kind == ENV and piece.tag == "crop" and not t.crops
    assert piece.ids == [policy.vision_start_id, policy.vision_end_id]
    assert [p.kind for p in t.pieces].count(IMAGE) == 1  # the main image only: no pixels came back
    assert exact(policy, t) < 1e-4


def test_dummy_crop_keeps_the_slots_and_counts_against_max_crops(policy, samples):
    boxes = [(10, 10, 60, 50), (60, 20, 100, 70), (0, 0, 40, 40)]
    cfg = RolloutConfig(**{**vars(GREEDY), "max_new_tokens": 200})
    (own,) = rollout(policy, samples[:1], cfg, group_size=1, scripts=[script(*boxes)], progress=False)
    (t,) = rollout(
        policy, samples[:1], cfg, group_size=1, scripts=[script(*boxes)], progress=False, crop_ids=dummy_tokens(policy)
    )
    assert len(t.events) == 3
    dummies = [t.pieces[e.image_piece] for e in t.events if e.ok]
    assert len(dummies) == 2 and "crop refused" in t.pieces[t.events[2].piece + 1].text  # the third call: max_crops
    for d, c in zip(dummies, own.crops):  # as many slots as the crop's image tokens, between the same markers
        assert d.ids == [policy.pad_id if i == policy.image_token_id else i for i in c.ids]
        assert policy.image_token_id not in d.ids
    assert exact(policy, t) < 1e-4


def test_result_only_shows_the_own_crops_up_front_in_the_batched_prefill(policy, samples):
    own = rollout(policy, samples, GREEDY, group_size=1, scripts=[script((10, 10, 60, 50)), None], progress=False)
    given = [GivenCrops(s, t.crops) for s, t in zip(samples, own)]
    off = RolloutConfig(greedy=True, max_crops=0, max_new_tokens=30, max_segment_tokens=30)
    batched = rollout(policy, given, off, group_size=1, progress=False)
    ref = rollout(policy, given, RolloutConfig(**{**vars(off), "mode": "reference"}), group_size=1, progress=False)
    roles = [p.info.role for p in batched[0].pieces if p.kind == IMAGE]
    assert roles == ["main", "given"] and len(batched[0].image_pieces) == 2 and not batched[0].crops
    assert [p.info.role for p in batched[1].pieces if p.kind == IMAGE] == ["main"]  # no own crop: nothing given
    for b, r in zip(batched, ref):  # every prompt image encoded at the prefill: the same tokens as the official loop
        assert b.input_ids() == r.input_ids()
        assert exact(policy, b) < 1e-4


def test_audit_rollouts_run_every_setting_and_the_majority_holds_k_per_sample(policy, samples):
    own = rollout(policy, samples, GREEDY, group_size=1, scripts=[script((10, 10, 60, 50)), None], progress=False)
    runs = audit_rollouts(
        policy,
        samples,
        own,
        RolloutSettings(max_crops=2, max_new_tokens=30, temperature=0.0),
        AuditSettings(k=3),
        scripts=[script((10, 10, 60, 50)), None],
    )
    assert set(runs) == {"format_only", "dummy_crop", "result_only", "no_crop", "majority_no_crop"}
    assert all(len(v) == 2 for v in runs.values()) and [len(v) for v in runs["majority_no_crop"]] == [3, 3]
    assert not any(t.crops for v in ("no_crop", "result_only") for t in runs[v])
    assert runs["format_only"][0].events[0].ok and not runs["format_only"][0].crops
    with pytest.raises(ValueError, match="unknown audit setting"):
        audit_rollouts(policy, samples, own, RolloutSettings(), only=("zoom",))


def test_majority_normalises_ignores_silence_and_breaks_ties_by_first_written():
    assert majority(["Red", None, "blue", "red."]) == "Red"
    assert majority(["blue", "red"]) == "blue"
    assert majority([None, None]) is None


def test_tool_only_set_and_chance_levels_by_hand():
    groups = ["a", "a", "a", "b"]
    acc = {
        "own": [1, 1, 0, 1],
        "no_crop": [0, 1, 0, 0],
        "majority_no_crop": [0, 0, 1, 0],
        "format_only": [0, 0, 0, None],
        "pass_at_k_no_crop": [1, 1, 1, 0],
    }
    rows = audit_table(groups, acc, k=5, chance={"a": 0.5, "b": 0.2})
    a = rows["a"]
    assert a["tool_only"] == pytest.approx(1 / 3) and a["tool_only_n"] == 1 and a["solved_own_n"] == 2
    assert a["also_solved_without"] == pytest.approx(0.5)  # sample 1 is also solved without crops
    assert a["acc_format_only"] == 0 and a["acc_format_only_chance"] == 0.5
    assert a["pass_at_k_no_crop_chance"] == pytest.approx(1 - 0.5**5)  # guessing yes / no five times: 0.97
    assert a["tool_only_chance"] == pytest.approx(0.5 * 0.25) and a["also_solved_without_chance"] == 0.75
    assert rows["b"]["acc_format_only"] != rows["b"]["acc_format_only"]  # not run there: NaN, not 0
    assert rows["all"]["chance"] == pytest.approx((3 * 0.5 + 0.2) / 4)
    assert a["acc_no_crop_lo"] < a["acc_no_crop"] < a["acc_no_crop_hi"]
    with pytest.raises(ValueError, match="one entry per sample"):
        audit_table(groups, {"own": [1]}, 5, {})


def test_wilson_interval():
    lo, hi = wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_chance_of_uses_the_world_levels_for_world_samples_else_distinct_answers(samples):
    from r3lab.data.vlir import build_samples

    world = build_samples(6, seed=5, families=("read_one", "compare_two", "control"), progress=False)
    assert chance_of(world) == pytest.approx({"read_one": 0.2, "compare_two": 0.5, "control": 0.5})
    assert chance_of(samples) == {"read_one": 1.0, "control": 1.0}  # one answer seen each: a degenerate guess


def test_cost_per_correct_answer_by_hand(policy, samples):
    own = rollout(policy, samples, GREEDY, group_size=1, scripts=[script((10, 10, 60, 50)), None], progress=False)
    s0 = spent(own[0])
    assert s0["crops"] == 1 and s0["tokens"] == sum(len(p.ids) for p in own[0].pieces if p.kind == "model_text")
    rows = cost_rows(
        "own", ["a", "a"], own, [1.0, 0.0], [{"wall_s": 2.0, "vision_s": 0.5}, {"wall_s": 1.0, "vision_s": 0.25}]
    )
    assert rows["a"]["wall_s_per_correct_own"] == 3.0 and rows["a"]["vision_s_per_correct_own"] == 0.75
    assert rows["a"]["crops_per_correct_own"] == 1.0 + len(own[1].crops)
    none = cost_rows("own", ["a", "a"], own, [0.0, 0.0])
    assert math.isnan(none["a"]["tokens_per_correct_own"])  # nothing right: no cost per correct answer


def test_by_family_times_each_family_and_keeps_the_order(policy, samples):
    groups = ["x", "y", "x"]
    seen = []

    def run(idx):
        seen.append(idx)
        return [
            rollout(policy, samples[:1], GREEDY, group_size=1, scripts=[script((10, 10, 60, 50))], progress=False)[0]
            for _ in idx
        ]

    out, seconds = by_family(policy, groups, run)
    assert seen == [[0, 2], [1]] and len(out) == 3
    assert seconds[0] == seconds[2] and seconds[0]["vision_s"] > 0 and seconds[1]["wall_s"] > 0
    with VisionClock(policy) as clock:
        pass
    assert clock.seconds == 0.0
