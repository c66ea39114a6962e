"""VLIR samples between crop-call styles: bare JSON <-> Qwen3-VL's tool call, absolute <-> relative 0-1000,
on non-square images; through the official SFT file; and SFT refusing a style the policy does not write."""

import json
from dataclasses import replace

import pytest

from r3lab.core.crop_calls import CallStyle, find_crop_calls
from r3lab.core.prompt import PromptConfig
from r3lab.core.regions import Frame, ViewConfig
from r3lab.core.trajectory import IMAGE, MODEL
from r3lab.data.call_styles import restyle, sample_style, style_mismatch
from r3lab.data.formats import export_sft, import_sft
from r3lab.data.vlir import build_samples, image_size
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.config import SFTConfig
from r3lab.train.sft import train

VIEW = ViewConfig()
STYLES = [CallStyle(c, g) for c in ("absolute", "relative") for g in ("json", "tool")]


@pytest.fixture(scope="module")
def samples():
    return build_samples(6, seed=4, progress=False) + toy_samples(2, VIEW)  # the toy image is 448x336: non-square


def boxes(s):
    return [p.info.box_input for p in s.rationale if p.kind == IMAGE]


def texts(s):
    return [p.text for p in s.rationale if p.kind == MODEL]


@pytest.mark.parametrize("style", STYLES[1:])
def test_restyle_and_back_is_exact_for_whole_pixel_boxes(samples, style):
    for s in samples:
        there = restyle(s, style, VIEW)
        assert sample_style(there) == style and sample_style(s) == CallStyle()
        frame = Frame.of(image_size(s), VIEW)
        for p, box in zip([p for p in there.rationale if p.kind == MODEL], boxes(there) + [None]):
            calls = find_crop_calls(p.text, frame, VIEW.max_aspect, style)
            if box is not None:  # each crop is exactly what the environment reads from the call before it
                assert calls and calls[-1].ok and calls[-1].box == box and calls[-1].end == len(p.text)
        back = restyle(there, CallStyle(), VIEW)
        assert texts(back) == texts(s) and boxes(back) == boxes(s)  # views are <= 1000 px: the 0-1000 grid is finer


def test_non_square_frames_are_covered(samples):
    sizes = {Frame.of(image_size(s), VIEW).input_size for s in samples}
    assert any(w != h for w, h in sizes)


def test_relative_tool_text_holds_thousandths_and_a_label_survives(samples):
    s = samples[-1]
    t = restyle(s, CallStyle("relative", "tool"), VIEW)
    frame = Frame.of(image_size(s), VIEW)
    first = texts(t)[0]
    assert '"name": "image_zoom_in_tool"' in first and first.endswith("</tool_call>")
    nums = json.loads(first[first.index("{") : first.rindex("}") + 1])["arguments"]["bbox_2d"]
    assert nums == [round(v) for v in frame.to_relative(boxes(s)[0])]
    listed = "[" + ", ".join(map(str, nums)) + "]"
    labelled = replace(
        t,
        rationale=[
            replace(p, text=p.text.replace(listed, listed + ', "label": "mark"')) if p.kind == MODEL else p
            for p in t.rationale
        ],
    )
    again = restyle(restyle(labelled, CallStyle("absolute", "tool"), VIEW), CallStyle("relative", "tool"), VIEW)
    assert texts(again)[0] == texts(labelled)[0] and '"label": "mark"' in texts(again)[0]


@pytest.mark.parametrize("style", [CallStyle("relative", "tool"), CallStyle("relative", "json")])
def test_the_official_sft_file_round_trips_in_either_style(samples, style, tmp_path):
    s = samples[:3]
    styled = [restyle(x, style, VIEW) for x in s]
    f = export_sft(styled, tmp_path / "x" / "sft.json", calls=style)
    rec = json.loads(f.read_text())[0]
    assert ("<tool_call>" in rec["response_list"][0]) == (style.grammar == "tool")
    back, rep = import_sft(f, calls=style)
    assert rep.errors == [] and [texts(b) for b in back] == [texts(x) for x in styled]
    assert [boxes(b) for b in back] == [boxes(x) for x in styled]
    assert all(sample_style(b) == style for b in back)
    # the default file is the official one: absolute pixels in bare JSON, the same crops
    g = export_sft(styled, tmp_path / "y" / "sft.json")
    official, _ = import_sft(g)
    assert [texts(b) for b in official] == [texts(x) for x in s]
    assert all(sample_style(b) == CallStyle() for b in official)


def test_sft_refuses_samples_in_another_style_naming_them_and_the_fix():
    pol = tiny_policy(fresh=True)
    data = toy_samples(2, pol.view)
    tool = replace(pol, prompt=PromptConfig(calls=CallStyle("relative", "tool")))
    with pytest.raises(
        ValueError, match=r"toy0 \(its crop calls are absolute/json, the policy writes relative/tool\).*restyle"
    ):
        train(tool, data, SFTConfig(steps=1, batch_size=2))
    assert style_mismatch(restyle(data[0], tool.prompt.calls, pol.view), tool.prompt.calls) == ""


@pytest.mark.parametrize("style", STYLES[1:])
def test_filters_accept_and_retarget_keeps_a_restyled_sample(samples, style):
    from r3lab.data.filters import check_sample
    from r3lab.data.vlir import retarget

    s = restyle(samples[0], style, VIEW)
    assert check_sample(samples[0], VIEW) is None and check_sample(s, VIEW) is None
    bad = replace(s, rationale=[replace(p, text=p.text[:-3]) if k == 0 else p for k, p in enumerate(s.rationale)])
    assert "crop call" in check_sample(bad, VIEW)[1]  # a cut-off call is still caught in this style
    big = ViewConfig(max_pixels=224 * 224)
    moved = retarget(s, big)
    assert sample_style(moved) == style and check_sample(moved, big) is None
    assert texts(moved) == texts(restyle(retarget(samples[0], big), style, big))
