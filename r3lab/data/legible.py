"""Illegibility at the coarse view, legibility after crop-and-zoom: the world's premise, measured.

A detail must cover a few model-input pixels at most at the coarse view (so the model has to look
again: the recipe's no-crop row measures that it cannot read them there) and several times more in the
zoomed crop of its landmark (so looking again helps).
`coarse_detail_extent` / `zoomed_detail_extent` compute both sides exactly from the configs;
`coarse_residual` measures them on a rendered scene.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..core.regions import Frame, ViewConfig, crop_and_zoom
from .world import Scene, WorldConfig, region_input_box


def _detail_sizes(world: WorldConfig, kind: str | None) -> list[int]:
    sizes = {"mark": world.mark_size, "shape": world.shape_size, "dots": world.dot_size,
             "glyph": 5 * world.glyph_scale}  # a glyph is read as a whole: its height
    if kind is not None and kind not in sizes:
        raise ValueError(f"detail kind must be one of {sorted(sizes)} or None, got {kind!r}")
    return list(sizes.values()) if kind is None else [sizes[kind]]


def coarse_detail_extent(world: WorldConfig | None = None, view: ViewConfig | None = None,
                         kind: str | None = None) -> float:
    """Largest side of a detail element (of `kind`, default any) in model-input pixels of the coarse view.

    Below 1 the detail covers less than one pixel of what the model sees without cropping; the default
    mark is 1.8 px (a quarter of a 7-px patch), and the no-crop row of the recipe measures it unread.
    """
    world, view = world or WorldConfig(), view or ViewConfig()
    scale = max(max(f.input_w / f.orig_w, f.input_h / f.orig_h)
                for f in (Frame.of(tuple(s), view) for s in world.canvas_sizes))
    return max(_detail_sizes(world, kind)) * scale


def zoomed_detail_extent(world: WorldConfig | None = None, view: ViewConfig | None = None,
                         kind: str | None = None) -> float:
    """Smallest side of a detail element (of `kind`, default any) once its landmark is cropped and zoomed.

    Exact over every landmark size, every alignment of the box to the coarse grid and every canvas
    size: the crop box is the integer input-frame box a reference rationale writes
    (`region_input_box`) and the zoom is `crop_and_zoom`'s. Pixels of the zoomed crop.
    """
    world, view = world or WorldConfig(), view or ViewConfig()
    smallest = min(_detail_sizes(world, kind))
    worst = math.inf
    for size in world.canvas_sizes:
        frame = Frame.of(tuple(size), view)
        blank = Image.new("RGB", tuple(size))
        step = max(1, math.ceil(frame.orig_w / frame.input_w))
        m = world.region_margin
        for s in range(world.object_min, world.object_max + 1):
            for off in range(step):
                x = world.object_gap + off
                crop = crop_and_zoom(blank, region_input_box((x - m, x - m, x + s + m, x + s + m), frame), view)
                scale = min(crop.image.width / (crop.box_orig[2] - crop.box_orig[0] + 1),
                            crop.image.height / (crop.box_orig[3] - crop.box_orig[1] + 1))
                worst = min(worst, smallest * scale)
    return worst


def legibility(world: WorldConfig | None = None, view: ViewConfig | None = None) -> dict:
    """Per detail kind: side at the coarse view (model-input px) and after crop-and-zoom (crop px)."""
    return {k: {"coarse_px": coarse_detail_extent(world, view, k), "zoomed_px": zoomed_detail_extent(world, view, k)}
            for k in ("mark", "shape", "dots", "glyph")}


def coarse_residual(scene: Scene, view: ViewConfig | None = None, threshold: int = 60) -> dict:
    """Measured, not computed: how much the details change the coarse view vs the zoomed crops.

    Renders the scene with and without details, resizes both as the model sees them, and reports the
    largest per-channel change (grey levels 0-255) and the number of pixels changed by more than
    `threshold` at the coarse view (`coarse_max`, `coarse_pixels`) and inside the zoomed crops of the
    landmarks' regions (largest over the crops: `zoomed_max`, `zoomed_pixels`). A detail that tints a
    pixel or two of the coarse view could still be guessed by a strong model: the no-crop row measures it.
    """
    view = view or ViewConfig()
    a, b = scene.render(True), scene.render(False)
    frame = Frame.of(scene.size, view)
    ca, cb = (np.asarray(x.resize(frame.input_size, Image.BICUBIC), np.int16) for x in (a, b))
    diff = np.abs(ca - cb).max(axis=2)
    zoom = zoom_px = 0
    for k in range(len(scene.landmarks)):
        box = region_input_box(scene.region(k), frame)
        za, zb = (np.asarray(crop_and_zoom(x, box, view).image, np.int16) for x in (a, b))
        zd = np.abs(za - zb).max(axis=2)
        zoom, zoom_px = max(zoom, int(zd.max())), max(zoom_px, int((zd > threshold).sum()))
    return {"coarse_max": int(diff.max()), "zoomed_max": zoom, "coarse_pixels": int((diff > threshold).sum()),
            "zoomed_pixels": zoom_px}
