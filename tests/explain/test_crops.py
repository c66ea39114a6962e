"""Per-crop explanations: attention mass, IoU, control family, counterfactual importance."""

import pytest
import torch
from PIL import Image

from r3lab.core.batch import collate
from r3lab.core.env import REPO_ROOT
from r3lab.core.regions import box_iou
from r3lab.engine.scoring import TokenScorer, token_logprobs
from r3lab.explain.crops import disagreements, explain_crops, explanation_table
from r3lab.explain.swaps import _answer_positions, answer_logprobs, counterfactual_trajectory
from r3lab.testing import tiny_policy, toy_samples, toy_trajectory

SHIPPED = REPO_ROOT / "assets" / "checkpoints" / "r3-tiny-sft"


@pytest.fixture(scope="module")
def policy():
    return tiny_policy()


def test_record_fields_are_consistent(policy):
    traj = toy_trajectory(policy)
    (e,) = explain_crops(policy, traj)
    frame = traj.frame
    assert e.ok and e.box == traj.events[0].call.box and e.box_orig == traj.crops[0].info.box_orig
    a = e.attention
    assert a.mass_in_box + a.mass_outside == pytest.approx(1.0)
    assert 0 < a.mass_in_box < 1
    assert e.area_frac == pytest.approx((e.box[2] - e.box[0]) * (e.box[3] - e.box[1]) / (frame.input_w * frame.input_h))
    assert a.concentration == pytest.approx(a.mass_in_box / e.area_frac)
    masses = [r["mass"] for r in a.top_regions]
    assert masses == sorted(masses, reverse=True) and len(masses) == 3
    # gt_boxes are original pixels: the disc crop matches the disc region once both are in the input frame
    assert e.gt_iou == pytest.approx(box_iou(e.box, frame.to_input(traj.gt_boxes[0])))
    assert e.gt_iou > 0.9 and e.needed is True
    imp = e.importance
    assert set(imp.effect) == {"blank", "coarse", "other"} and e.answer == "red" and imp.target == "answer"
    for v, lp in imp.swapped.items():
        assert imp.effect[v] == e.effect(v) == pytest.approx(imp.logp - lp)
    # the with-crop log-prob is the answer's teacher-forced log-prob
    assert imp.logp == pytest.approx(answer_logprobs(policy, [traj])[0], abs=1e-5)
    off = explain_crops(policy, toy_trajectory(policy, crop="square"))[0]
    assert off.gt_iou == 0.0
    assert any("IoU" in r for d in disagreements([off]) for r in d["reasons"])


def test_queries_are_the_call_and_the_tokens_before_it(policy):
    traj = toy_trajectory(policy)
    from r3lab.explain.swaps import call_queries as _call_queries
    from r3lab.explain.swaps import piece_starts as _piece_starts

    ev = traj.events[0]
    q = _call_queries(policy, traj, ev, _piece_starts(traj), window=4)
    piece = traj.pieces[ev.piece]
    start = _piece_starts(traj)[ev.piece]
    text = policy.decode([piece.ids[k - start] for k in q])
    assert text.endswith(ev.call.raw) and len(text) > len(ev.call.raw)
    assert q == list(range(q[0], q[-1] + 1)) and q[-1] == start + len(piece.ids) - 1


def test_control_family_and_reference_events(policy):
    traj = toy_trajectory(policy, family="control")
    assert explain_crops(policy, traj, importance=())[0].needed is False
    assert any("control" in r for d in disagreements(explain_crops(policy, traj, importance=())) for r in d["reasons"])
    # reference trajectories from samples carry no events: they are derived from the pieces
    ref = toy_samples(1, view=policy.view)[0].reference(policy.view).tokenize(policy)
    assert not ref.events
    (ev,) = ref.crop_events()
    assert ev.ok and ref.pieces[ev.image_piece].info.role == "crop"
    (e,) = explain_crops(policy, ref, answer_from="gt", importance=("blank",))
    assert e.answer == "yellow" and set(e.importance.effect) == {"blank"} and not ref.events


def test_counterfactual_views_keep_every_token_in_place(policy):
    traj = toy_trajectory(policy)
    crop = traj.crops[0]
    for kind in ("blank", "coarse", "other"):
        cf = counterfactual_trajectory(policy, traj, 0, kind)
        assert cf.input_ids() == traj.input_ids() and cf.crops[0].image.size == crop.image.size
        assert cf.crops[0].image.tobytes() != crop.image.tobytes()
        assert traj.crops[0] is crop  # the original is untouched
    b = collate([traj, counterfactual_trajectory(policy, traj, 0, "blank")], policy)
    assert torch.equal(b["position_ids"][:, 0], b["position_ids"][:, 1])
    from r3lab.explain.swaps import _other_box

    box = traj.events[0].call.box
    other = _other_box(box, traj.frame.input_size, [traj.frame.to_input(traj.gt_boxes[0])])
    assert box_iou(other, box) == 0.0
    with pytest.raises(ValueError, match="not an accepted crop"):
        counterfactual_trajectory(policy, traj, 3)
    with pytest.raises(ValueError, match=r"unknown swap\(s\) \['fog'\] in importance"):
        explain_crops(policy, traj, importance=("fog",))
    with pytest.warns(FutureWarning, match="'wrong' is now 'other'"):  # the old word still reads, until 0.3
        (old,) = explain_crops(policy, traj, importance=("wrong",))
    assert set(old.importance.effect) == {"other"}


def _train_crop_reader(steps: int = 60):
    """A fresh r3-tiny taught that the answer is the colour of the crop: disc crop -> red, square crop ->
    blue, blank crop -> either. The text is identical in every row, so only the crop pixels decide."""
    torch.manual_seed(0)
    pol = tiny_policy(seed=3, fresh=True)
    base = toy_trajectory(pol)
    square = counterfactual_trajectory(pol, base, 0, "other").crops[0].image
    blank = Image.new("RGB", base.crops[0].image.size, (128, 128, 128))

    def row(img, ans):
        t = counterfactual_trajectory(pol, base, 0, image=img)
        last = t.pieces[-1]
        text = last.text.replace("<answer>red<", f"<answer>{ans}<")
        t.pieces[-1] = type(last)(last.kind, text, ids=pol.encode(text), tag=last.tag)
        return t

    data = [row(base.crops[0].image, "red"), row(square, "blue"), row(blank, "red"), row(blank, "blue")]
    batch = collate(data, pol)
    mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    for b, t in enumerate(data):
        mask[b, _answer_positions(pol, t)] = True
    scorer = TokenScorer(pol.model)
    opt = torch.optim.AdamW(pol.model.parameters(), lr=1e-3)
    pol.model.train()
    for _ in range(steps):
        lp = token_logprobs(scorer, batch, mask=mask)
        loss = -(lp * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    pol.model.eval()
    return pol, base, square


@pytest.mark.slow
def test_counterfactual_changes_sign_with_a_crop_of_the_wrong_region():
    pol, base, square = _train_crop_reader()
    right = explain_crops(pol, base, answer_from="gt")[0]
    assert right.effect("blank") > 0.1 and right.effect("other") > 0.1
    swapped = counterfactual_trajectory(pol, base, 0, image=square)  # the model cropped the wrong region
    wrong = explain_crops(pol, swapped, answer_from="gt")[0]
    assert wrong.effect("blank") < -0.1


@pytest.mark.slow
def test_shipped_checkpoint_crops_land_on_the_named_landmark_more_than_chance():
    """The shipped SFT model's own crops (greedy rollouts): their boxes overlap the named landmark's region
    far more than random boxes of the same size do (IoU 0.03 in the recipe's random row)."""
    from r3lab.data.vlir import build_samples
    from r3lab.engine.config import RolloutConfig
    from r3lab.engine.rollouts import rollout
    from r3lab.model.policy import load_policy

    pol = load_policy(SHIPPED)
    samples = build_samples(12, seed=123, families=["read_one"], view=pol.view, progress=False)
    trajs = rollout(
        pol, samples, RolloutConfig(group_size=1, greedy=True, max_new_tokens=96, max_crops=1), progress=False
    )
    exps = [e for t in trajs for e in explain_crops(pol, t, answer_from="gt", importance=("blank",))]
    assert len(exps) >= 10  # it crops on (nearly) every read_one question
    ious = [e.gt_iou or 0.0 for e in exps]
    assert sum(ious) / len(ious) > 0.2, ious


def test_the_table_has_a_line_per_crop_decision(policy):
    trajs = [s.reference(policy.view).tokenize(policy) for s in toy_samples(2, policy.view)]
    explained = {t.sample_id: explain_crops(policy, t, importance=("blank",)) for t in trajs}
    lines = explanation_table(explained).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:3] == ["sample", "crop", "IoU"] and len(lines) == 2 + len(trajs)
    assert "importance (blank)" in head and "importance (coarse)" not in head  # only the numbers the records hold
    e = explained["toy0"][0]
    assert lines[2].startswith("| toy0") and f"{e.gt_iou:.2f}" in lines[2]
    assert f"{e.effect('blank'):+.3f}" in lines[2]


def test_the_same_crop_written_in_either_frame_and_grammar_is_explained_and_drawn_alike(policy):
    """Explanations and views read boxes in the input frame, whatever frame the model wrote; the record also
    says which frame that was and the numbers as written."""
    from dataclasses import replace

    from r3lab.core.crop_calls import CallStyle, format_crop_call
    from r3lab.core.prompt import PromptConfig
    from r3lab.core.regions import Frame
    from r3lab.engine.config import RolloutConfig
    from r3lab.engine.rollouts import rollout
    from r3lab.viz.steps import crop_boxes

    sample = toy_samples(1, policy.view)[0]
    frame = Frame.of(sample.load_image().size, policy.view)
    box = (frame.input_w * 0.25, frame.input_h * 0.25, frame.input_w * 0.75, frame.input_h * 0.75)
    records, drawn = {}, {}
    for style in (CallStyle(), CallStyle("relative"), CallStyle("relative", "tool")):
        pol = replace(policy, prompt=PromptConfig(calls=style))
        script = ["<think> look " + format_crop_call(box, style, frame), " red</think><answer>red</answer><|im_end|>"]
        (traj,) = rollout(
            pol,
            [sample],
            RolloutConfig(greedy=True, max_new_tokens=200, max_segment_tokens=120),
            group_size=1,
            scripts=[script],
            progress=False,
        )
        (records[style],) = explain_crops(pol, traj, importance=())
        drawn[style] = crop_boxes(traj)[0]["box"]
    a, r, t = records.values()
    assert a.box == pytest.approx(r.box) and a.box == pytest.approx(t.box) and a.box_orig == r.box_orig == t.box_orig
    assert a.gt_iou == pytest.approx(r.gt_iou) and a.gt_iou > 0
    assert (a.coords, r.coords, t.coords) == ("absolute", "relative", "relative")
    assert a.box_written == pytest.approx(box) and r.box_written == t.box_written == (250.0, 250.0, 750.0, 750.0)
    assert len(set(drawn.values())) == 1  # the views draw one box in original pixels


def test_read_scoring_weighs_the_text_after_each_crop(policy):
    traj = toy_trajectory(policy)
    (a,) = explain_crops(policy, traj)
    (r,) = explain_crops(policy, traj, importance_target="read")
    ev = traj.events[0]
    nxt = traj.pieces[ev.image_piece + 1]
    assert r.read == nxt.text and "<answer>" in r.read  # one crop: its read runs to the end
    from r3lab.explain.swaps import piece_starts as _piece_starts

    start = _piece_starts(traj)[ev.image_piece + 1]
    batch = collate([traj], policy)
    mask = torch.zeros_like(batch["loss_mask"])
    mask[0, start : start + len(nxt.ids)] = True
    with torch.no_grad():
        lp = token_logprobs(TokenScorer(policy.model), batch, mask=mask)
    assert r.importance.logp == pytest.approx(float(lp[0, start : start + len(nxt.ids)].sum()), abs=1e-4)
    assert r.importance.logp < a.importance.logp  # the read holds the answer and more tokens
    assert r.importance.target == "read"
    for v, lp_v in r.importance.swapped.items():
        assert r.effect(v) == pytest.approx(r.importance.logp - lp_v)
    with pytest.raises(ValueError, match="importance_target="):
        explain_crops(policy, traj, importance_target="tokens")


def test_read_scoring_stops_at_the_next_call(policy):
    from r3lab.data.vlir import build_samples

    (two,) = build_samples(1, seed=0, families=["compare_two"], view=policy.view, progress=False)
    traj = two.reference(policy.view).tokenize(policy)
    first, second = explain_crops(policy, traj, importance_target="read", answer_from="gt", importance=("blank",))
    calls = [e.call.raw for e in traj.crop_events()]
    assert first.read.startswith(" It is") or first.read.startswith(" This one")
    assert calls[1] not in first.read and "<answer>" not in first.read and "<answer>" in second.read
    assert set(first.importance.effect) == {"blank"} and first.importance.logp != second.importance.logp


def test_explain_crops_on_smolvlm():
    """The per-crop explanation on SmolVLM (tiles + global view, 1-D positions): attention in the box, the
    counterfactual variants and the answer's log-prob, as for Qwen."""
    from r3lab.model.tiny import TinyConfig, build_tiny

    p = build_tiny(TinyConfig(seed=1), family="smolvlm")
    traj = toy_trajectory(p, size=(448, 336))
    (e,) = explain_crops(p, traj)
    a = e.attention
    assert e.ok and a.mass_in_box + a.mass_outside == pytest.approx(1.0) and 0 < a.mass_in_box < 1
    assert set(e.importance.effect) == {"blank", "coarse", "other"} and e.answer == "red"
    assert e.importance.logp == pytest.approx(answer_logprobs(p, [traj])[0], abs=1e-5)


def test_explain_crops_is_a_view_of_explain_one_record_one_table(policy):
    """One contract: `explain_crops` returns `explain`'s CropRecord, its numbers the same as `explain` asked for
    attention and importance; the full record carries them beside the other methods."""
    from r3lab.explain.contract import CropRecord, WhyConfig
    from r3lab.explain.crops import CropExplanation, crop_table
    from r3lab.explain.record import explain

    traj = toy_trajectory(policy)
    (view,) = explain_crops(policy, traj, importance=("blank",), importance_target="read")
    (full,) = explain(
        policy,
        traj,
        WhyConfig(
            methods=("attention", "patching"),
            targets=("box",),
            block=4,
            importance=("blank",),
            importance_target="read",
            faithfulness=False,
        ),
    )
    assert CropExplanation is CropRecord and isinstance(view, CropRecord)
    assert view.gt_iou == pytest.approx(full.gt_iou) and view.read == full.read
    assert view.attention == full.attention and view.importance == full.importance
    assert view.attention.vs_box["cell"] in ("both", "attention_only", "box_only", "neither")
    assert torch.equal(view.map("attention"), full.map("attention")) and view.result("patching", "box") is None
    assert "methods=['attention']" in repr(view) and "map=" not in repr(view)  # print(record): numbers, not maps
    table = crop_table([full])
    assert "patching" in table.splitlines()[0] and "importance (blank)" in table.splitlines()[0]
    with pytest.raises(ValueError, match="answer_from"):
        explain_crops(policy, traj, answer_from="truth")
    assert WhyConfig.quick() == WhyConfig(
        methods=("attention",), targets=("box",), importance=("blank", "coarse", "other"), faithfulness=False
    )  # one request: a preset of the same class
