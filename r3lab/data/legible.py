"""Illegibility at the coarse view, legibility after crop-and-zoom: the world's premise, measured.

A detail must cover a few model-input pixels at most at the coarse view (so the model has to look
again: the recipe's no-crop row measures that it cannot read them there) and several times more in the
zoomed crop of its landmark (so looking again helps).
`coarse_detail_extent` / `zoomed_detail_extent` compute both sides exactly from the configs;
`coarse_residual` measures them on a rendered scene.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PIL import Image

from ..core.regions import Frame, ViewConfig, crop_and_zoom
from ..core.settings import short
from .world import Scene, WorldConfig, region_input_box


def _detail_sizes(world: WorldConfig, kind: str | None) -> list[int]:
    sizes = {
        "pattern": world.pattern_period / 2,
        "mark": world.mark_size,
        "shape": world.shape_size,
        "dots": world.dot_size,
        "glyph": 5 * world.glyph_scale,
    }  # a glyph is read as a whole: its height
    if kind is not None and kind not in sizes:
        raise ValueError(f"detail kind must be one of {sorted(sizes)} or None, got {short(kind)}")
    return list(sizes.values()) if kind is None else [sizes[kind]]


def coarse_detail_extent(
    world: WorldConfig | None = None, view: ViewConfig | None = None, kind: str | None = None
) -> float:
    """Largest side of a detail element (of `kind`, default any) in model-input pixels of the coarse view.

    Below 1 the detail covers less than one pixel of what the model sees without cropping; the default
    mark is 1.8 px (a quarter of a 7-px patch), and the no-crop row of the recipe measures it unread.
    """
    world, view = world or WorldConfig(), view or ViewConfig()
    scale = max(
        max(f.input_w / f.orig_w, f.input_h / f.orig_h) for f in (Frame.of(tuple(s), view) for s in world.canvas_sizes)
    )
    return max(_detail_sizes(world, kind)) * scale


def zoomed_detail_extent(
    world: WorldConfig | None = None, view: ViewConfig | None = None, kind: str | None = None
) -> float:
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
                scale = min(
                    crop.image.width / (crop.box_orig[2] - crop.box_orig[0] + 1),
                    crop.image.height / (crop.box_orig[3] - crop.box_orig[1] + 1),
                )
                worst = min(worst, smallest * scale)
    return worst


def legibility(world: WorldConfig | None = None, view: ViewConfig | None = None) -> dict:
    """Per detail kind: side at the coarse view (model-input px) and after crop-and-zoom (crop px)."""
    return {
        k: {"coarse_px": coarse_detail_extent(world, view, k), "zoomed_px": zoomed_detail_extent(world, view, k)}
        for k in ("pattern", "mark", "shape", "dots", "glyph")
    }


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
    return {
        "coarse_max": int(diff.max()),
        "zoomed_max": zoom,
        "coarse_pixels": int((diff > threshold).sum()),
        "zoomed_pixels": zoom_px,
    }


def _swap(scene: Scene, k: int, value: str) -> Scene:
    """The same scene with landmark k's detail showing `value` (a pattern's name or a mark's colour)."""
    det = scene.landmarks[k].detail
    field_ = "shape" if det.kind == "pattern" else "colour"
    lms = list(scene.landmarks)
    lms[k] = replace(lms[k], detail=replace(det, **{field_: value}))
    return replace(scene, landmarks=lms)


def class_separability(
    world: WorldConfig | None = None,
    view: ViewConfig | None = None,
    tasks=None,
    n: int = 200,
    seed: int = 0,
    window: int = 7,
) -> dict:
    """Whether the coarse view can tell a detail's answer classes apart, measured on `n` read_one scenes.

    Each scene is rendered once per answer class with everything else equal (layout, noise, the other
    landmarks), and once with another noise seed. Reported, in grey levels of the model's coarse input:
    `class_max`, the largest difference between two classes of one scene; `noise_max`, the largest difference
    the world's own pixel noise makes to the same scene. And the accuracy of a linear probe (ridge regression
    onto the classes, trained on half the scenes' coarse `window` x `window` pixels around the detail, tested on
    the other half; features: the grey levels and their squared differences along four directions, so an
    orientation shows whatever the grating's phase) at the coarse view (`coarse_probe`) and in the zoomed crop
    of the landmark (`zoom_probe`, its `window`-sized neighbourhood at the crop's scale), beside `chance`.
    A detail the zoom is necessary for has `class_max <= noise_max` and a coarse probe at chance, and a zoom
    probe well above it.
    """
    from .tasks import TaskConfig, answer_classes, make_task

    world, view, tasks = world or WorldConfig(), view or ViewConfig(), tasks or TaskConfig()
    classes = list(answer_classes(world, tasks.read_kinds[0]))
    feats = {"coarse": [], "zoom": []}
    labels, groups, class_max, noise_max = [], [], 0, 0
    for i in range(n):
        scene = make_task("read_one", seed, i, world, tasks).scene
        frame = Frame.of(scene.size, view)
        det = scene.landmarks[0].detail
        cx, cy = ((det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2)
        box = region_input_box(scene.region(0), frame)
        views = []
        for c, value in enumerate(classes):
            im = _swap(scene, 0, value).render()
            coarse = np.asarray(im.resize(frame.input_size, Image.BICUBIC), np.float32)
            crop = crop_and_zoom(im, box, view)
            zoom = np.asarray(crop.image, np.float32)
            zx = (cx - crop.box_orig[0]) * crop.image.width / (crop.box_orig[2] - crop.box_orig[0] + 1)
            zy = (cy - crop.box_orig[1]) * crop.image.height / (crop.box_orig[3] - crop.box_orig[1] + 1)
            zw = window * round(frame.orig_w / frame.input_w)  # the same neighbourhood in zoomed pixels
            feats["coarse"].append(
                _window(coarse, cx * frame.input_w / frame.orig_w, cy * frame.input_h / frame.orig_h, window)
            )
            feats["zoom"].append(_window(zoom, zx, zy, zw, step=round(frame.orig_w / frame.input_w) // 2 or 1))
            labels.append(c)
            groups.append(i)
            views.append(coarse)
        class_max = max(class_max, max(float(np.abs(v - views[0]).max()) for v in views[1:]))
        other = replace(scene, noise_seed=scene.noise_seed + 1).render()
        noise = np.asarray(other.resize(frame.input_size, Image.BICUBIC), np.float32)
        truth = views[classes.index(scene.landmarks[0].detail.shape if det.kind == "pattern" else det.colour)]
        noise_max = max(noise_max, float(np.abs(noise - truth).max()))
    y, g = np.array(labels), np.array(groups)
    out = {"n": n, "classes": classes, "chance": 1 / len(classes), "class_max": class_max, "noise_max": noise_max}
    for name, X in feats.items():
        out[f"{name}_probe"] = _ridge_accuracy(np.stack(X), y, g < n // 2, len(classes))
    return out


def _window(a: np.ndarray, cx: float, cy: float, size: int, step: int = 1) -> np.ndarray:
    """Probe features of the `size` x `size` pixels of `a` around (cx, cy) (edge-padded): the grey levels
    (every `step`-th) and the mean squared differences along the rows, columns and both diagonals in each
    quadrant (what an orientation detector sees, whatever a grating's phase)."""
    half = size // 2
    p = np.pad(a, ((size, size), (size, size), (0, 0)), mode="edge")
    x0, y0 = int(round(cx)) - half + size, int(round(cy)) - half + size
    w = p[y0 : y0 + size, x0 : x0 + size].mean(-1)
    energy = []
    for d in (w[:, 1:] - w[:, :-1], w[1:, :] - w[:-1, :], w[1:, 1:] - w[:-1, :-1], w[1:, :-1] - w[:-1, 1:]):
        h, v = d.shape[0] // 2, d.shape[1] // 2
        energy += [float((q**2).mean()) for q in (d[:h, :v], d[:h, v:], d[h:, :v], d[h:, v:], d)]
    return np.concatenate([w[::step, ::step].reshape(-1), np.log1p(energy)])


def _ridge_accuracy(X: np.ndarray, y: np.ndarray, train: np.ndarray, k: int, lam: float = 1.0) -> float:
    """Held-out accuracy of ridge regression onto one-hot classes (standardised features)."""
    mu, sd = X[train].mean(0), X[train].std(0) + 1e-3
    Z = (X - mu) / sd
    Y = np.eye(k)[y[train]]
    A = Z[train]
    W = np.linalg.solve(A.T @ A + lam * len(A) * np.eye(A.shape[1]) / 100, A.T @ Y)
    return float(((Z[~train] @ W).argmax(1) == y[~train]).mean())
