"""The crop environment in both grammars and both coordinate frames: the exact stop, the tool-response
turn, the same verdicts, the loss mask, and the KV cache kept exactly (r3-tiny as a Qwen3-VL)."""

from dataclasses import replace

import pytest
import torch

from r3lab.core.crop_calls import TOOL_CLOSE, CallStyle, Verdict, format_crop_call
from r3lab.core.prompt import TOOL_TURN, PromptConfig
from r3lab.core.regions import Frame
from r3lab.core.trajectory import ENV, IMAGE, MODEL
from r3lab.data.sample import Sample
from r3lab.engine.config import RolloutConfig
from r3lab.engine.environment import note_text
from r3lab.engine.rollouts import rollout
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_image

from .test_rollouts import BAD_CALLS, Recorder, kinds, teacher_forced

# a tool call is ~60 tiny tokens
GREEDY = RolloutConfig(greedy=True, max_crops=3, max_new_tokens=320, max_segment_tokens=110)
TOOL = CallStyle("relative", "tool")
STYLES = [CallStyle(c, g) for c in ("absolute", "relative") for g in ("json", "tool")]


@pytest.fixture(scope="module")
def qwen3():
    """r3-tiny's family (Qwen3-VL: learned pos_embed, DeepStack at both vision blocks), absolute/json as built."""
    return build_tiny(TinyConfig(seed=3, family="qwen3_vl", patch_size=7, deepstack=(0, 1)))


def styled(policy, style):
    return replace(policy, prompt=PromptConfig(calls=style))


@pytest.fixture(scope="module")
def sample():
    return Sample(toy_image((448, 336), 0), "What colour is the disc?", ["red"], sample_id="s0")


def frame_of(policy, sample):
    return Frame.of(sample.load_image().size, policy.view)


@pytest.mark.parametrize("n_crops", [0, 1, 3])
def test_tool_grammar_keeps_the_cache_exact_and_stops_exactly(qwen3, sample, n_crops):
    """Each call ends its segment at `</tool_call>`; the crop comes back inside the chat template's tool
    turn; nothing is deleted; incremental logits equal one full forward (DeepStack included)."""
    pol = styled(qwen3, TOOL)
    frame = frame_of(pol, sample)
    boxes = [(10, 10, 60, 50), (40, 30, 100, 80), (0, 0, 30, 30)][:n_crops]
    calls = [format_crop_call(b, TOOL, frame, label="disc") for b in boxes]
    script = ["<think> look"] + [part for c in calls for part in (" " + c, " then")]
    rec = Recorder()
    (traj,) = rollout(pol, [sample], GREEDY, group_size=1, scripts=[script], logits_hook=rec, progress=False)
    assert traj.calls == TOOL and len(traj.crops) == n_crops and all(e.ok for e in traj.events)
    full, ids, _ = teacher_forced(pol, traj)
    assert full.abs().max() > 1.0 and (rec.of(0) - full).abs().max().item() < 1e-4
    assert ids.tolist() == [i for p in traj.pieces if p.kind == MODEL for i in p.ids]
    # the model's text is exactly what it wrote, each segment ending with the call's last character
    assert traj.model_text().startswith("".join(script))
    for e, c in zip(traj.events, calls):
        seg = traj.pieces[e.piece]
        assert seg.text.endswith(" " + c) and seg.text.endswith(TOOL_CLOSE)
        assert kinds(traj)[e.piece : e.piece + 4] == [MODEL, ENV, IMAGE, ENV]
        assert [traj.pieces[e.piece + 1].text, traj.pieces[e.piece + 3].text] == list(TOOL_TURN)
        assert traj.pieces[e.piece + 1].tag == traj.pieces[e.piece + 3].tag == "tool" and e.image_piece == e.piece + 2
    # the loss mask covers the tool-response turn exactly as environment text: not at all
    mask, kind = traj.loss_mask(), traj.token_kinds()
    assert mask.tolist() == [k == MODEL for k in kind]
    tool_tokens = sum(len(p.ids) for p in traj.pieces if p.tag == "tool")
    assert tool_tokens == sum(len(pol.encode(t)) for t in TOOL_TURN) * n_crops
    # a trajectory without events (a reference, an import) derives the same ones across the tool turn
    derived = replace(traj, events=[]).crop_events()
    assert [(e.piece, e.image_piece, e.call.box) for e in derived] == [
        (e.piece, e.image_piece, e.call.box) for e in traj.events
    ]


def test_rows_in_both_grammars_and_frames_cropping_at_different_steps_stay_exact(qwen3, sample):
    """One batch per style, rows cropping at different steps; each row equals its own full forward."""
    for style in STYLES:
        pol = styled(qwen3, style)
        f = frame_of(pol, sample)

        def c(b, style=style, f=f):
            return format_crop_call(b, style, f)

        scripts = [
            [c((10, 10, 60, 50)), " a"],
            [" a a a a a a a", c((20, 20, 80, 70)), " b", c((0, 0, 40, 40))],
            ["<answer>red</answer><|im_end|>"],
        ]
        rec = Recorder()
        out = rollout(
            pol,
            [sample] * 3,
            RolloutConfig(greedy=True, max_new_tokens=200, max_segment_tokens=100),
            group_size=1,
            scripts=scripts,
            logits_hook=rec,
            progress=False,
        )
        assert [len(t.crops) for t in out] == [1, 2, 0], style
        for i, t in enumerate(out):
            full, _, _ = teacher_forced(pol, t)
            assert (rec.of(i) - full).abs().max().item() < 1e-4, (style, i)


def test_the_same_box_in_either_frame_cuts_the_same_crop(qwen3, sample):
    frame = frame_of(qwen3, sample)
    box = (frame.input_w * 0.25, frame.input_h * 0.25, frame.input_w * 0.75, frame.input_h * 0.75)  # 250..750
    out = {}
    for style in (CallStyle(), CallStyle("relative"), CallStyle("relative", "tool")):
        pol = styled(qwen3, style)
        text = format_crop_call(box, style, frame)
        (t,) = rollout(
            pol, [sample], GREEDY, group_size=1, scripts=[[" look " + text, " done<|im_end|>"]], progress=False
        )
        out[style] = t
        assert (text.count("250") == 2) == (style.coords == "relative")  # relative numbers are thousandths
    crops = [t.crops[0] for t in out.values()]
    assert len({c.info.box_orig for c in crops}) == 1
    assert all(c.info.box_input == pytest.approx(crops[0].info.box_input) for c in crops)
    assert all(c.image.tobytes() == crops[0].image.tobytes() for c in crops[1:])


@pytest.mark.parametrize("verdict", [v for v in BAD_CALLS])
def test_bad_calls_get_the_same_verdict_and_a_note_in_the_tool_turn(qwen3, sample, verdict):
    raw = BAD_CALLS[verdict]
    tool_raw = '<tool_call>\n{"name": "image_zoom_in_tool", "arguments": ' + raw + "}\n" + TOOL_CLOSE
    if verdict is Verdict.OUTSIDE:  # absolute [200, 200, 300, 300] of a 112x84 view: outside in thousandths too
        tool_raw = tool_raw.replace("[200, 200, 300, 300]", "[1100, 1100, 1200, 1300]")
    if verdict is Verdict.TOO_THIN:
        tool_raw = tool_raw.replace("[10, 10, 100, 11]", "[50, 100, 900, 110]")
    pol = styled(qwen3, TOOL)
    (t,) = rollout(pol, [sample], GREEDY, group_size=1, scripts=[[" look ", tool_raw, " next"]], progress=False)
    (event,) = t.events
    assert event.call.verdict is verdict and not event.ok and not t.crops
    assert kinds(t)[3:6] == [MODEL, ENV, MODEL] and t.pieces[3].text.endswith(tool_raw)
    note = t.pieces[4]
    assert note.text == event.note == note_text(event.call.message, TOOL)
    assert note.text.startswith(TOOL_TURN[0]) and note.text.endswith(TOOL_TURN[1])
    assert t.pieces[5].text.startswith(" next")


def test_unknown_tool_and_unterminated_tool_calls(qwen3, sample):
    pol = styled(qwen3, TOOL)
    other = '<tool_call>\n{"name": "web_search", "arguments": {"q": "disc"}}\n</tool_call>'
    scripts = [
        [" look ", other, " next"],
        [' look <tool_call>\n{"name": "image_zoom_in_tool"', "<|im_end|>"],
        [' bare {"bbox_2d": [10, 10, 60, 50]} is only reasoning here', "<|im_end|>"],
    ]
    a, b, c = rollout(pol, [sample] * 3, GREEDY, group_size=1, scripts=scripts, progress=False)
    assert [e.call.verdict for e in a.events] == [Verdict.UNKNOWN_TOOL] and "image_zoom_in_tool" in a.events[0].note
    assert [e.call.verdict for e in b.events] == [Verdict.UNTERMINATED] and b.meta["stop"] == "eos"
    assert not c.events and not c.crops and c.meta["stop"] == "eos"


def test_sft_reference_in_the_tool_grammar_equals_the_rollout_of_its_text(qwen3, sample):
    """A tool-grammar rationale, as SFT sees it, is token for token what the engine builds for the same text."""
    from r3lab.core.trajectory import ImageInfo, Piece

    pol = styled(qwen3, TOOL)
    frame = frame_of(pol, sample)
    call = format_crop_call((10, 10, 60, 50), TOOL, frame, label="disc")
    first, last = "<think> look " + call, " it is red</think><answer>red</answer><|im_end|>"
    (rolled,) = rollout(pol, [sample], GREEDY, group_size=1, scripts=[[first, last]], progress=False)
    box = rolled.crops[0].info.box_input
    s = replace(
        sample,
        rationale=[
            Piece(MODEL, first),
            Piece(IMAGE, info=ImageInfo("crop", (0, 0), (448, 336), box)),
            Piece(MODEL, last),
        ],
        provenance={"calls": TOOL.to_dict()},
    )
    ref = s.reference(pol.view, pol.prompt).tokenize(pol)
    assert ref.input_ids() == rolled.input_ids() and kinds(ref) == kinds(rolled)
    assert torch.equal(ref.loss_mask(), rolled.loss_mask())
