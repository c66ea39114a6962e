import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from r3lab.core.crop_calls import Verdict, closed_call_since, find_crop_calls, format_crop_call, parse_crop_call
from r3lab.core.regions import Frame

FRAME = Frame(448, 336, 112, 84)

BAD = [
    ('{"bbox_2d": [1, 2, 3, 4}', Verdict.NOT_JSON),
    ("{bbox_2d: [1, 2, 3, 4]}", Verdict.NOT_JSON),
    ('{"box": [1, 2, 3, 4], "bbox": 1}', Verdict.NO_BBOX),
    ('{"bbox_2d": [1, 2, 3]}', Verdict.WRONG_ARITY),
    ('{"bbox_2d": [1, 2, 3, 4, 5]}', Verdict.WRONG_ARITY),
    ('{"bbox_2d": "1,2,3,4"}', Verdict.WRONG_ARITY),
    ('{"bbox_2d": [1, "2", 3, 4]}', Verdict.NON_NUMERIC),
    ('{"bbox_2d": [true, 2, 3, 4]}', Verdict.NON_NUMERIC),
    ('{"bbox_2d": [null, 2, 3, 4]}', Verdict.NON_NUMERIC),
    ('{"bbox_2d": [NaN, 2, 3, 4]}', Verdict.NON_FINITE),
    ('{"bbox_2d": [1, 2, Infinity, 4]}', Verdict.NON_FINITE),
    ('{"bbox_2d": [1, 2, 1e999, 4]}', Verdict.NON_FINITE),
    ('{"bbox_2d": [1, 2, ' + "9" * 400 + ", 4]}", Verdict.NON_FINITE),
    ('{"bbox_2d": [30, 2, 10, 40]}', Verdict.INVERTED),
    ('{"bbox_2d": [10, 40, 30, 20]}', Verdict.INVERTED),
    ('{"bbox_2d": [10, 20, 10, 40]}', Verdict.ZERO_AREA),
    ('{"bbox_2d": [200, 200, 300, 300]}', Verdict.OUTSIDE),
    ('{"bbox_2d": [-50, -50, -1, -1]}', Verdict.OUTSIDE),
    ('{"bbox_2d": [10, 10, 100, 11]}', Verdict.TOO_THIN),
    ('{"bbox_2d": [10, 10, 10.5, 50]}', Verdict.TOO_THIN),
]


@pytest.mark.parametrize("raw,verdict", BAD)
def test_every_bad_case_gets_its_verdict(raw, verdict):
    call = parse_crop_call(raw, FRAME)
    assert call.verdict is verdict, call
    assert not call.ok and call.message


def test_sub_pixel_box_in_original_is_zero_area():
    call = parse_crop_call('{"bbox_2d": [10, 10, 10.2, 10.2]}', FRAME, max_aspect=1000)
    assert call.verdict is Verdict.ZERO_AREA


def test_partially_outside_box_is_clipped_not_refused():
    call = parse_crop_call('{"bbox_2d": [100, 70, 130, 100]}', FRAME)
    assert call.ok and call.clipped


def test_find_crop_calls_in_text_and_unterminated():
    text = 'I look. {"bbox_2d": [1, 2, 30, 40]} then {"note": 1} and {"bbox_2d": [5, 5, 9'
    calls = find_crop_calls(text, FRAME)
    assert [c.verdict for c in calls] == [Verdict.OK, Verdict.UNTERMINATED]
    assert text[calls[0].start : calls[0].end] == calls[0].raw
    assert calls[0].box == (1.0, 2.0, 30.0, 40.0)


def test_closed_call_since_only_fires_on_the_newest_token():
    text = 'a {"bbox_2d": [1, 2, 30, 40]}'
    assert closed_call_since(text, len(text) - 1, FRAME).ok
    assert closed_call_since(text, len(text), FRAME) is None
    # a token like ']}\n' closes the call even though it does not end the text
    text2 = text + "\n"
    assert closed_call_since(text2, len(text2) - 3, FRAME).ok


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_no_exception_escapes_on_arbitrary_text(s):
    for call in find_crop_calls(s, FRAME):
        assert isinstance(call.verdict, Verdict)
    parse_crop_call(s, FRAME)
    parse_crop_call("{" + s + "}", FRAME)
    closed_call_since(s, max(0, len(s) - 3), FRAME)


json_atoms = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)


@given(st.lists(json_atoms, max_size=6))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bbox_values_never_raise(vals):
    raw = json.dumps({"bbox_2d": vals})
    call = parse_crop_call(raw, FRAME)
    if call.ok:
        assert len(vals) == 4 and all(math.isfinite(float(v)) for v in vals)


coord = st.integers(0, 112)


@given(coord, coord, coord, coord)
@settings(max_examples=300, deadline=None)
def test_valid_boxes_parse_back_to_the_same_numbers(a, b, c, d):
    x1, x2 = sorted((a, c))
    y1, y2 = sorted((b, d))
    if x1 == x2 or y1 == y2:
        return
    raw = format_crop_call((x1, y1, x2, y2))
    call = parse_crop_call(raw)  # syntax only: no frame
    assert call.ok and call.box == (x1, y1, x2, y2)
    found = find_crop_calls("think " + raw + " more")
    assert len(found) == 1 and found[0].box == (x1, y1, x2, y2)


@given(st.floats(0, 100, allow_nan=False), st.floats(0, 100, allow_nan=False))
@settings(max_examples=100, deadline=None)
def test_float_boxes_round_trip(x, y):
    box = (x, y, x + 5.5, y + 7.25)
    assert parse_crop_call(format_crop_call(box)).box == box


# -- braces and quotes inside JSON strings (hardening item 6) ----------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        '{"note": "}", "bbox_2d": [10, 10, 60, 60]}',
        '{"bbox_2d": [10, 10, 60, 60], "note": "}"}',
        '{"note": "{", "bbox_2d": [10, 10, 60, 60]}',
        '{"note": "a \\" } b", "bbox_2d": [10, 10, 60, 60]}',
    ],
)
def test_a_brace_inside_a_json_string_still_gives_the_crop(raw):
    text = "I look. " + raw + " then more"
    (call,) = find_crop_calls(text, FRAME)
    assert call.ok and call.box == (10.0, 10.0, 60.0, 60.0) and call.raw == raw
    assert closed_call_since(text[: call.end], call.end - 1, FRAME).ok  # the rollout sees it at its last `}`
    assert closed_call_since(text[: call.end - 1], call.end - 2, FRAME) is None  # and not one token earlier


def test_a_stray_quote_ends_its_call_at_the_newline_with_a_verdict():
    text = 'I look {"bbox_2d: [1, 2, 30, 40]} at it\nand go on {"bbox_2d": [1, 2, 30, 40]}'
    bad, good = find_crop_calls(text, FRAME)
    assert bad.verdict is Verdict.NOT_JSON and bad.raw.endswith("at it\n") and good.ok
    assert closed_call_since(text[: bad.end], bad.end - 1, FRAME).verdict is Verdict.NOT_JSON
    # without a newline the string stays open: at the end of the text the call is unterminated
    (open_,) = find_crop_calls('x {"bbox_2d: [1, 2, 30, 40]} more', FRAME)
    assert open_.verdict is Verdict.UNTERMINATED


CALLY = st.text(alphabet='{}"\\\n :,[]bbox_2d0123456789x', max_size=80)
LITERAL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["}", "{", '"', "\\", '}"}', "<|im_end|>", "<|image_pad|>", '{"bbox_2d": [1, 2, 3, 4]}']
)


@given(CALLY)
@settings(max_examples=500, deadline=None)
def test_every_prefix_finds_the_calls_the_finished_text_has(text):
    """What a rollout sees after each token (a prefix) agrees with the finished text: a call closed in
    the prefix is the same call in the full text, with the same verdict."""
    full = [(c.start, c.end, c.verdict) for c in find_crop_calls(text, FRAME) if c.verdict is not Verdict.UNTERMINATED]
    for k in range(len(text) + 1):
        seen = [
            (c.start, c.end, c.verdict)
            for c in find_crop_calls(text[:k], FRAME)
            if c.verdict is not Verdict.UNTERMINATED
        ]
        assert seen == [c for c in full if c[1] <= k]
    for c in find_crop_calls(text, FRAME):  # spans are exact; only a call still open at the end is unterminated
        assert text[c.start : c.end] == c.raw and (c.verdict is not Verdict.UNTERMINATED or c.end == len(text))


@given(
    st.text(alphabet='{}"\\\n :,x', max_size=20),
    st.dictionaries(st.text(max_size=4), LITERAL, max_size=3),
    st.text(alphabet=" .abc\n", max_size=10),
)
@settings(max_examples=300, deadline=None)
def test_a_valid_call_with_any_strings_inside_is_found_whole(prefix, extra, suffix):
    """A well-formed call holding braces, quotes, backslashes or special-token text in its strings is
    found whole, with its box, after any text that closes its own calls."""
    extra.pop("bbox_2d", None)
    raw = json.dumps({**extra, "bbox_2d": [10, 10, 60, 60]}, ensure_ascii=False)
    head = prefix + "\n"  # whatever the prefix opened is ended by its newline or its own braces
    found = find_crop_calls(head + raw + suffix, FRAME)
    assume(not any(c.start < len(head) < c.end for c in found))  # not nested in a call the prefix left open
    calls = [c for c in found if c.start >= len(head)]
    assert calls and calls[0].ok and calls[0].raw == raw and calls[0].box == (10.0, 10.0, 60.0, 60.0)


# -- coordinate frames and the two grammars (issue 14) -------------------------------------------------
from r3lab.core.crop_calls import TOOL_CLOSE, TOOL_OPEN, CallStyle  # noqa: E402

STYLES = [CallStyle(c, g) for c in ("absolute", "relative") for g in ("json", "tool")]
# non-square frames: landscape, portrait, and one whose input side is over 1000 px (coarser relative grid)
FRAMES = [Frame(448, 336, 112, 84), Frame(200, 700, 56, 196), Frame(3000, 1200, 1568, 616)]


def tool(args: str) -> str:
    return f'{TOOL_OPEN}\n{{"name": "image_zoom_in_tool", "arguments": {args}}}\n{TOOL_CLOSE}'


@pytest.mark.parametrize("raw,verdict", BAD)
def test_the_tool_grammar_gives_every_bad_case_the_same_verdict(raw, verdict):
    call = parse_crop_call(tool(raw), FRAME, style=CallStyle(grammar="tool"))
    assert call.verdict is verdict, call
    (found,) = find_crop_calls("I look. " + tool(raw) + " and", FRAME, style=CallStyle(grammar="tool"))
    assert found.verdict is verdict and found.raw == tool(raw)


@pytest.mark.parametrize(
    "box,verdict",
    [
        ((200, 200, 300, 300), Verdict.OUTSIDE),
        ((10, 10, 100, 11), Verdict.TOO_THIN),
        ((30, 2, 10, 40), Verdict.INVERTED),
        ((10, 10, 60, 50), Verdict.OK),
    ],
)
def test_relative_numbers_get_the_verdict_of_the_same_pixels(box, verdict):
    rel = tuple(round(v, 6) for v in FRAME.to_relative(box))
    raw = '{"bbox_2d": [' + ", ".join(repr(v) for v in rel) + "]}"
    assert parse_crop_call(raw, FRAME, style=CallStyle("relative")).verdict is verdict
    assert parse_crop_call(format_crop_call(box), FRAME).verdict is verdict


def test_tool_calls_that_are_not_zoom_calls():
    s = CallStyle(grammar="tool")
    other = f'{TOOL_OPEN}\n{{"name": "search", "arguments": {{"bbox_2d": [1, 2, 30, 40]}}}}\n{TOOL_CLOSE}'
    assert parse_crop_call(other, FRAME, style=s).verdict is Verdict.UNKNOWN_TOOL
    assert (
        parse_crop_call(f'{TOOL_OPEN}\n{{"name": "image_zoom_in_tool"}}\n{TOOL_CLOSE}', FRAME, style=s).verdict
        is Verdict.NO_BBOX
    )
    text = 'bare {"bbox_2d": [1, 2, 30, 40]} is reasoning here; ' + TOOL_OPEN + '\n{"name": "image_zoom'
    (only,) = find_crop_calls(text, FRAME, style=s)
    assert only.verdict is Verdict.UNTERMINATED and only.start == text.index(TOOL_OPEN)


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("style", STYLES)
def test_a_box_round_trips_through_either_frame_on_non_square_images(frame, style):
    """input box -> text in the style -> parsed back into the input frame -> original pixels."""
    box = (0.11 * frame.input_w, 0.3 * frame.input_h, 0.62 * frame.input_w, 0.9 * frame.input_h)
    box = tuple(float(round(v)) for v in box)
    text = format_crop_call(box, style, frame, label="the sign")
    assert text.startswith(TOOL_OPEN) == (style.grammar == "tool")
    assert text.endswith(TOOL_CLOSE if style.grammar == "tool" else "}")
    (call,) = find_crop_calls("I look closer. " + text + " Then", frame, style=style)
    assert call.ok and call.raw == text
    # absolute: exact; relative: whole numbers of 0-1000, so within half a thousandth of each side
    tol = (0.0, 0.0) if style.coords == "absolute" else (frame.input_w / 2000, frame.input_h / 2000)
    for k, (a, b) in enumerate(zip(call.box, box)):
        assert abs(a - b) <= tol[k % 2] + 1e-9, (call.box, box)
    if style.coords == "relative" and max(frame.input_w, frame.input_h) <= 1000:
        assert tuple(float(round(v)) for v in call.box) == box  # finer than a pixel: whole pixels come back exactly
    if style.coords == "relative":  # the numbers written are the box's thousandths of each side
        nums = [float(v) for v in text.split("[")[1].split("]")[0].split(",")]
        assert nums == [round(v) for v in frame.to_relative(box)] and all(0 <= v <= 1000 for v in nums)
    # into original pixels: the relative frame is the same fractions of the original image
    o_abs, o_rel = frame.to_orig(box), frame.to_orig(call.box)
    tolerance = 0 if style.coords == "absolute" else max(1, frame.orig_w / 1000)
    assert all(abs(a - b) <= tolerance for a, b in zip(o_abs, o_rel))


def test_relative_frame_is_the_same_fraction_of_the_original_image():
    f = Frame(3000, 1200, 1568, 616)
    rel = (100.0, 250.0, 600.0, 750.0)
    assert f.to_relative(f.from_relative(rel)) == pytest.approx(rel)
    # orig pixels = relative / 1000 * original side, whichever frame the model saw
    assert f.to_orig(f.from_relative(rel)) == (300, 300, 1800, 900)


def test_a_tool_call_closes_at_its_last_character_only():
    s = CallStyle("relative", "tool")
    text = "I look. " + format_crop_call((10, 10, 60, 50), s, FRAME)
    assert closed_call_since(text, len(text) - 1, FRAME, style=s).ok
    assert closed_call_since(text[:-1], len(text) - 2, FRAME, style=s) is None  # "</tool_call" is still open
    assert closed_call_since(text, len(text), FRAME, style=s) is None


def test_call_style_refuses_unknown_settings_naming_them():
    with pytest.raises(ValueError, match="coords = 'pixels'"):
        CallStyle("pixels")
    with pytest.raises(ValueError, match="grammar = 'xml'"):
        CallStyle(grammar="xml")
    assert CallStyle.of(None) == CallStyle() == CallStyle.of({"coords": "absolute", "grammar": "json"})
