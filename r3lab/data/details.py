"""The small details a landmark carries, drawn: pattern tiles (gratings at equal mean grey), tiny shapes, dots
and digits. A scene (`r3lab.data.world`) says where each detail goes; this module says what it looks like."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from ..core.settings import short

# a pattern detail's gratings, and the 3x5 bitmaps of the digits (rows top to bottom)
PATTERNS = ("horizontal", "vertical", "rising", "falling", "checked")  # gratings of a pattern detail (answers)
GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
}


def detail_mask(shape: str, n: int) -> np.ndarray:
    """The n x n pixel pattern of a tiny shape (crisp, no anti-aliasing)."""
    yy, xx = np.mgrid[0:n, 0:n]
    c = (n - 1) / 2
    if shape == "square":
        return np.ones((n, n), bool)
    if shape == "ring":
        return (xx == 0) | (yy == 0) | (xx == n - 1) | (yy == n - 1)
    if shape == "cross":
        return (np.abs(xx - c) < 1) | (np.abs(yy - c) < 1)
    if shape == "triangle":  # apex up
        return np.abs(xx - c) <= yy / 2 + 1e-9
    raise ValueError(f"unknown detail shape {short(shape)}; known: square, ring, cross, triangle")


@lru_cache(maxsize=256)
def pattern_tile(name: str, size: int, period: int, taper: int, contrast: int, phase: tuple = (0.0, 0.0)) -> np.ndarray:
    """The `size` x `size` grey levels of a pattern detail: a grating of `period` px around grey 128.

    The grating is a cosine under a window whose contrast fades over `taper` px to the edge (a Hann
    window when `taper` is half the size): every pattern then has the same mean and almost no
    low-frequency content, so a view that averages over more than a period shows the same grey dot.
    `phase` shifts the grating (in periods along x and y): a random phase per tile leaves what little
    leaks into the coarse view with a random sign, so nothing there correlates with the pattern.
    """
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {short(name)}; known: {list(PATTERNS)}")
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    x, y = x + phase[0] * period, y + phase[1] * period
    w = 2 * math.pi / period
    grating = {
        "horizontal": lambda: np.cos(w * y),
        "vertical": lambda: np.cos(w * x),
        "rising": lambda: np.cos(w * (x + y) / math.sqrt(2)),
        "falling": lambda: np.cos(w * (x - y) / math.sqrt(2)),
        "checked": lambda: np.cos(w * x) * np.cos(w * y),
    }[name]()
    ramp = np.ones(size)
    for i in range(taper):  # raised-cosine edges
        ramp[i] = ramp[size - 1 - i] = 0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / taper)
    return np.clip(np.round(128 + contrast * np.outer(ramp, ramp) * grating), 0, 255).astype(np.uint8)


def draw_detail(
    im: Image.Image, d: ImageDraw.ImageDraw, det, rgb: tuple, period: int, taper: int, contrast: int
) -> None:
    """Draw detail `det` (a `r3lab.data.world.Detail`) onto `im` in colour `rgb`; a pattern tile takes the world's
    grating settings instead."""
    if det.kind == "pattern":
        tile = pattern_tile(det.shape, det.size, period, taper, contrast, tuple(det.phase))
        im.paste(Image.fromarray(tile, "L").convert("RGB"), tuple(det.cells[0]))
        return
    ys, xs = np.nonzero(detail_mask("square" if det.kind in ("dots", "glyph") else det.shape, det.size))
    pts = [(int(cx + x), int(cy + y)) for cx, cy in det.cells for x, y in zip(xs, ys)]
    d.point(pts, fill=tuple(rgb))
