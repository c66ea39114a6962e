"""Pixel geometry: smart-resize, the two coordinate frames, the official zoom rule, box arithmetic.

Internally coordinates follow Qwen2.5-VL and the VLM-R3 release (a model writing Qwen3-VL's relative
0-1000 frame is read into it by `r3lab.core.crop_calls.CallStyle`): a crop box holds absolute pixels of the
*model-input* image (the smart-resized view); the crop is cut from the original image after mapping
back (truncation, clipping, inclusive x2/y2 as in the official `get_img_crop`), zoomed by the official
rule and smart-resized within the crop pixel bounds. What a crop call looks like in text, and how a
bad one is judged, is `r3lab.core.crop_calls`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from PIL import Image

from .settings import short

Box = tuple[float, float, float, float]


MAX_PIXELS = 1 << 26  # 67 M pixels: five times Qwen's largest budget (16384 x 28 x 28)


@dataclass(frozen=True)
class ViewConfig:
    """Pixel budgets of the main image and of crops, and the crop-call validation limits."""

    min_pixels: int = 56 * 56
    """main image: smart-resize lower bound (pixels)"""
    max_pixels: int = 112 * 112
    """main image: upper bound; 112x112 = 16 visual tokens at factor 28"""
    crop_min_pixels: int = 56 * 56
    """crops: lower bound (tiny crops are up-sampled to at least this)"""
    crop_max_pixels: int = 140 * 140
    """crops: upper bound (a 100-130 px landmark's 11-px mark becomes >= 10.6 px)"""
    factor: int = 28
    """patch_size * merge_size of the vision tower; set by the policy"""
    max_aspect: float = 20.0
    """boxes thinner than 1:max_aspect are refused ("absurdly thin")"""

    def __post_init__(self):  # a bad budget would fail deep inside smart-resize, or silently make empty crops
        for lo, hi in (("min_pixels", "max_pixels"), ("crop_min_pixels", "crop_max_pixels")):
            a, b = getattr(self, lo), getattr(self, hi)
            if not (_whole(a) and _whole(b) and 1 <= a <= b <= MAX_PIXELS):
                raise ValueError(
                    f"ViewConfig.{lo} = {short(a)}, {hi} = {short(b)} are not allowed: expected whole "
                    f"numbers of pixels with 1 <= {lo} <= {hi} <= {MAX_PIXELS:,} (an image is resized "
                    "to them in memory)"
                )
        if not (_whole(self.factor) and 1 <= self.factor <= 1024):
            raise ValueError(
                f"ViewConfig.factor = {short(self.factor)} is not allowed: expected a whole number in "
                "[1, 1024] (patch_size * merge_size of the vision tower)"
            )
        if not (
            isinstance(self.max_aspect, (int, float))
            and not isinstance(self.max_aspect, bool)
            and 1 <= self.max_aspect <= 1000
        ):
            raise ValueError(
                f"ViewConfig.max_aspect = {short(self.max_aspect)} is not allowed: "
                "expected a finite number in [1, 1000]"
            )

    def with_factor(self, factor: int) -> "ViewConfig":
        return replace(self, factor=factor)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's smart_resize: sides multiples of `factor`, area within bounds, aspect kept."""
    if min(height, width) <= 0:
        raise ValueError(f"image sides must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class Frame:
    """An original image size and the model-input size it is smart-resized to."""

    orig_w: int
    orig_h: int
    input_w: int
    input_h: int

    @classmethod
    def of(cls, size: tuple[int, int], view: ViewConfig) -> "Frame":
        w, h = size
        ih, iw = smart_resize(h, w, view.factor, view.min_pixels, view.max_pixels)
        return cls(w, h, iw, ih)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.input_w, self.input_h)

    def to_orig(self, box: Box) -> tuple[int, int, int, int]:
        """Input-frame box -> inclusive original-pixel box, as the official code does it."""
        sx, sy = self.orig_w / self.input_w, self.orig_h / self.input_h
        x1, y1, x2, y2 = int(box[0] * sx), int(box[1] * sy), int(box[2] * sx), int(box[3] * sy)
        return (max(0, x1), max(0, y1), min(self.orig_w - 1, x2), min(self.orig_h - 1, y2))

    def to_input(self, box: Box) -> Box:
        """Original-pixel box -> input-frame box (floats)."""
        sx, sy = self.input_w / self.orig_w, self.input_h / self.orig_h
        return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    def to_relative(self, box: Box, scale: int = 1000) -> Box:
        """Input-frame box -> Qwen3-VL's relative frame (0..scale along each side; floats). The same
        fractions of the original image, since both frames scale each side linearly."""
        sx, sy = scale / self.input_w, scale / self.input_h
        return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    def from_relative(self, box: Box, scale: int = 1000) -> Box:
        """Relative box (0..scale) -> input-frame box (floats)."""
        sx, sy = self.input_w / scale, self.input_h / scale
        return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def zoom_scale(area_ratio: float) -> float:
    """The official zoom rule: 2x below 12.5 % of the image area, 1x from 50 %, linear between."""
    if area_ratio < 0.125:
        return 2.0
    if area_ratio >= 0.5:
        return 1.0
    return 2.0 - (area_ratio - 0.125) / 0.375


@dataclass
class Crop:
    """A zoomed crop ready to be shown to the model."""

    image: Image.Image  # final pixels at the model-input size of the crop
    box_input: Box  # the requested box, model-input frame of the main image (clipped)
    box_orig: tuple[int, int, int, int]  # inclusive original-pixel box that was cut
    zoom: float  # the official zoom factor (before smart-resize to the crop bounds)


def crop_and_zoom(image: Image.Image, box_input: Box, view: ViewConfig) -> Crop:
    """Cut `box_input` (model-input frame) out of the original `image` and zoom it.

    Raises ValueError for a box that is degenerate once mapped to the original image; crop calls
    parsed by `find_crop_calls` with a frame never are.
    """
    frame = Frame.of(image.size, view)
    x1, y1, x2, y2 = frame.to_orig(box_input)
    if x1 >= x2 or y1 >= y2:
        raise ValueError(f"box {box_input} is empty once mapped to the {image.width}x{image.height} original")
    region = image.crop((x1, y1, x2 + 1, y2 + 1))
    cw, ch = region.size
    zoom = zoom_scale(cw * ch / (frame.orig_w * frame.orig_h))
    th, tw = smart_resize(
        max(1, int(zoom * ch)), max(1, int(zoom * cw)), view.factor, view.crop_min_pixels, view.crop_max_pixels
    )
    clipped = clip_box(box_input, frame.input_w, frame.input_h)
    return Crop(region.convert("RGB").resize((tw, th), Image.LANCZOS), clipped, (x1, y1, x2, y2), zoom)


def box_area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 for empty boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_giou(a: Box, b: Box) -> float:
    """Generalised IoU (Rezatofighi et al. 2019): IoU minus the share of the enclosing box that neither
    covers; in [-1, 1], and still informative (falling with distance) when the boxes do not overlap."""
    iou = box_iou(a, b)
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    if hull <= 0:
        return iou
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = box_area(a) + box_area(b) - ix * iy
    return iou - (hull - union) / hull


def box_contains(outer: Box, inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def clip_box(box: Box, w: float, h: float) -> Box:
    """`box` clipped to a w x h image."""
    return (max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3]))


def check_box(box, what: str = "box", size: tuple[int, int] | None = None) -> Box:
    """`box` as 4 floats; ValueError naming `what` unless it holds 4 finite numbers with x1 <= x2 and y1 <= y2,
    inside the w x h image `size` when one is given. The one rule for every stored box (regions, details, crops)."""
    if isinstance(box, (str, bytes, dict)) or not hasattr(box, "__len__") or len(box) != 4:
        raise ValueError(f"{what} must be 4 numbers [x1, y1, x2, y2], got {short(box)}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
        raise ValueError(f"{what} must hold 4 finite numbers, got {short(list(box))}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x1 > x2 or y1 > y2:
        raise ValueError(f"{what} {list(box)} is inverted: expected x1 <= x2 and y1 <= y2")
    if size is not None and (x1 < 0 or y1 < 0 or x2 > size[0] or y2 > size[1]):
        raise ValueError(f"{what} {list(box)} lies outside its {size[0]}x{size[1]} image: fix the box, or drop it")
    return x1, y1, x2, y2


def check_size(size, what: str = "size") -> tuple[int, int]:
    """(w, h) as ints; ValueError naming `what` unless two positive integers."""
    if (
        isinstance(size, (str, bytes, dict))
        or not hasattr(size, "__len__")
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"{what} must be [width, height], two positive integers, got {short(size)}")
    return int(size[0]), int(size[1])
