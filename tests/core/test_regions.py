import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from r3lab.core.regions import Frame, ViewConfig, box_iou, crop_and_zoom, smart_resize, zoom_scale

VIEW = ViewConfig(min_pixels=56 * 56, max_pixels=112 * 112, crop_min_pixels=56 * 56, crop_max_pixels=112 * 112)
FRAME = Frame(448, 336, 112, 84)


@pytest.mark.parametrize("h,w", [(336, 448), (1000, 300), (28, 28), (2048, 1536), (20, 30), (112, 112)])
def test_smart_resize_multiples_and_bounds(h, w):
    rh, rw = smart_resize(h, w, 28, 56 * 56, 112 * 112)
    assert rh % 28 == 0 and rw % 28 == 0
    assert 56 * 56 <= rh * rw <= 112 * 112
    assert abs(rw / rh - w / h) < 0.5 * w / h  # aspect roughly kept


def test_smart_resize_identity_on_valid_sizes():
    assert smart_resize(84, 112, 28, 56 * 56, 112 * 112) == (84, 112)


def test_smart_resize_matches_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf

    for h, w in [(336, 448), (1000, 37), (700, 700), (64, 2000), (3000, 4000), (5, 900), (10, 10)]:
        assert smart_resize(h, w, 28, 3136, 1605632) == hf(h, w, 28, 3136, 1605632)


def test_smart_resize_rejects_extreme_aspect():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(1, 500)


def test_zoom_rule_official_thresholds():
    assert zoom_scale(0.05) == 2.0
    assert zoom_scale(0.1249) == 2.0
    assert zoom_scale(0.125) == 2.0  # the linear part starts at 2 exactly
    assert zoom_scale(0.25) == pytest.approx(2 - 0.125 / 0.375)  # ~1.67 as in the spec
    assert zoom_scale(0.5) == 1.0
    assert zoom_scale(0.6) == 1.0
    xs = [i / 100 for i in range(12, 51)]
    assert all(zoom_scale(a) >= zoom_scale(b) for a, b in zip(xs, xs[1:]))


@given(
    st.integers(50, 3000),
    st.integers(50, 3000),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
    st.floats(0, 1),
)
@settings(max_examples=200, deadline=None)
def test_coordinate_round_trip_within_one_pixel(W, H, a, b, c, d):
    if max(W, H) / min(W, H) > 200:
        return
    frame = Frame.of((W, H), ViewConfig(max_pixels=448 * 448))
    x1, x2 = sorted((a * (W - 1), c * (W - 1)))
    y1, y2 = sorted((b * (H - 1), d * (H - 1)))
    box = (int(x1), int(y1), int(x2), int(y2))
    back = frame.to_orig(frame.to_input(box))
    assert all(abs(u - v) <= 1 for u, v in zip(back, box))
    # and the other way: an input-frame box survives orig and back within one input pixel
    ib = frame.to_input(box)
    again = frame.to_input(frame.to_orig(ib))
    sx, sy = frame.input_w / W, frame.input_h / H
    assert all(abs(u - v) <= 1 + max(sx, sy) for u, v in zip(again, ib))


def test_to_orig_truncates_and_clips_like_official():
    f = Frame(448, 336, 112, 84)
    assert f.to_orig((10.9, 10.2, 40, 40)) == (43, 40, 160, 160)
    assert f.to_orig((-5, -5, 500, 500)) == (0, 0, 447, 335)


def test_crop_and_zoom_cuts_the_right_pixels():
    im = Image.new("RGB", (448, 336), (255, 255, 255))
    im.paste((255, 0, 0), (40, 40, 161, 161))  # red block exactly at the original box
    crop = crop_and_zoom(im, (10, 10, 40, 40), VIEW)
    assert crop.box_orig == (40, 40, 160, 160)
    assert crop.zoom == 2.0  # 121*121 / (448*336) < 12.5 %
    assert crop.image.size[0] % 28 == 0 and crop.image.size[1] % 28 == 0
    assert crop.image.size[0] * crop.image.size[1] <= VIEW.crop_max_pixels
    r, g, b = crop.image.getpixel((crop.image.width // 2, crop.image.height // 2))
    assert r > 200 and g < 50


def test_crop_zoom_respects_crop_bounds_for_large_crops():
    im = Image.new("RGB", (448, 336))
    crop = crop_and_zoom(im, (0, 0, 112, 84), VIEW)
    assert crop.zoom == 1.0
    assert crop.image.width * crop.image.height <= VIEW.crop_max_pixels


def test_crop_and_zoom_rejects_degenerate_box():
    with pytest.raises(ValueError, match="empty"):
        crop_and_zoom(Image.new("RGB", (448, 336)), (10, 10, 10.1, 20), VIEW)


def test_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(max_pixels=0), "max_pixels"),
        (dict(min_pixels=0), "min_pixels"),
        (dict(crop_max_pixels=10), "crop_max_pixels"),
        (dict(factor=0), "factor"),
        (dict(max_pixels=12544.5), "max_pixels"),
        (dict(max_aspect=float("nan")), "max_aspect"),
        (dict(max_aspect=0.5), "max_aspect"),
    ],
)
def test_a_view_out_of_range_is_refused_naming_the_field(kw, field):
    """Before: max_pixels=0 or factor=0 divided by zero deep in smart-resize; crop_max_pixels=10 made crops silently."""
    with pytest.raises(ValueError, match=rf"^ViewConfig\..*{field} = .* (is|are) not allowed"):
        ViewConfig(**kw)
