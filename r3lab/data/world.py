"""A procedural world where looking again is necessary: large coloured landmarks carrying tiny details.

Each image is a light, slightly noisy canvas larger than the model's coarse view, with 2-3 landmark
shapes in distinct colours (so a colour names an object) that are easy to find at the coarse view.
Each landmark carries a small detail near its centre. The default detail is a *pattern*: a grey tile
holding a fine grating (horizontal, vertical, rising or falling stripes, or checks) whose mean is the
same grey for every pattern and whose contrast fades smoothly to the tile's edge, so the coarse view
(one sixth of the resolution) shows the same grey dot whatever the pattern, while the zoomed crop shows
the stripes. The other details (a coloured mark, a tiny shape, a few dots, a digit) are opt-in; a colour
mark survives downsampling as a tint, which makes the crop a pointer rather than a magnifier.
All geometry lives in `WorldConfig`; this module renders scenes (`r3lab.data.layout` lays them out,
`r3lab.data.details` draws the details). The questions asked about
them are in `r3lab.data.tasks`, the measured (il)legibility of their details in `r3lab.data.legible`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from PIL import Image, ImageDraw

from ..core.regions import Box, Frame
from ..core.settings import check_ranges, short
from .details import PATTERNS, draw_detail

# Named colours (RGB). A name in a question or answer always means this colour.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 205, 30),
    "purple": (140, 60, 190),
    "orange": (245, 135, 30),
    "pink": (240, 120, 185),
    "cyan": (40, 200, 215),
    "brown": (125, 80, 40),
    "black": (20, 20, 20),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
}
LANDMARK_SHAPES = ("circle", "square", "triangle", "diamond")  # what `_draw_shape` draws
DETAIL_SHAPES = ("square", "ring", "cross", "triangle")  # what `details.draw_shape` draws
CLUTTER = [(205, 200, 190), (190, 188, 182), (215, 210, 200), (175, 172, 168)]  # muted, never a palette colour


@dataclass(frozen=True)
class WorldConfig:
    """Geometry and appearance of the synthetic world (original pixels)."""

    canvas_sizes: tuple = ((672, 672),)
    """(w, h) choices; 672 -> 112 is scale 1/6"""
    background: tuple = (242, 240, 234)
    """canvas colour (light)"""
    noise: int = 4
    """background noise amplitude in grey levels"""
    noise_block: int = 4
    """noise is constant over blocks of this side (keeps PNGs small)"""
    clutter: int = 6
    """muted strokes per image, kept away from the landmarks"""
    n_objects_min: int = 2
    """landmarks per image (compare_two uses at least 2): the fewest"""
    n_objects_max: int = 3
    """landmarks per image: the most"""
    object_min: int = 100
    """landmark side range in pixels (100-130 -> 17-22 px in a 112 view: localisable): the smallest"""
    object_max: int = 130
    """landmark side range in pixels: the largest"""
    object_gap: int = 24
    """minimum free space between landmarks and to the border"""
    object_shapes: tuple = ("circle", "square", "triangle", "diamond")
    """landmark shapes"""
    object_colours: tuple = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "brown")
    """landmark colours"""
    patterns: tuple = PATTERNS
    """the gratings a pattern detail shows (answers of the default families)"""
    pattern_size: int = 18
    """side of a pattern tile: a 3-px grey dot at the coarse view, ~20 px zoomed"""
    pattern_period: int = 4
    """grating period in pixels: far below the coarse view's resolution (12 px)"""
    pattern_taper: int = 5
    """pixels over which the grating fades to grey at the tile's edge (a Tukey window; size / 2: Hann)"""
    pattern_contrast: int = 110
    """grating amplitude around the tile's grey (128), in grey levels"""
    pattern_phase: str = "random"
    """"random": a random offset per tile; "fixed": centred (its 1-5 leaking grey levels are systematic: a coarse probe
    reads them)"""
    mark_size: int = 11
    """side of a colour mark: 1.8 px at the coarse view, >= 10.6 px zoomed (5 px stays under a patch)"""
    mark_colours: tuple = ("red", "green", "blue", "yellow", "black", "white")
    """detail colours (answers)"""
    detail_shapes: tuple = ("square", "cross", "ring", "triangle")
    """shapes of tiny shape details (answers)"""
    shape_size: int = 5
    """side of a tiny shape detail"""
    dot_size: int = 3
    """side of one dot of the count family"""
    dot_gap: int = 2
    """free pixels between dots"""
    glyph_scale: int = 1
    """glyph family: pixels per font pixel (1 -> a 3x5 px digit)"""
    detail_jitter: int = 2
    """how far (px) a detail may sit off the landmark's centre"""
    min_contrast: float = 150.0
    """minimum RGB distance between a detail and its landmark"""
    region_margin: int = 2
    """ground-truth region = landmark box grown by this many pixels"""
    control_min: int = 100
    """side range of the landmark a control question asks about (clear at coarse view): the smallest"""
    control_max: int = 130
    """side range of the landmark a control question asks about: the largest"""

    def __post_init__(self):  # JSON / CLI give lists; keep tuples so the config stays hashable
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(tuple(x) if isinstance(x, list) else x for x in v))
        self._check_sizes()
        for lo, hi in (
            ("object_min", "object_max"),
            ("n_objects_min", "n_objects_max"),
            ("control_min", "control_max"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(
                    f"WorldConfig: {lo}={getattr(self, lo)} exceeds {hi}={getattr(self, hi)}; raise {hi} or lower {lo}"
                )
        for name in (*self.object_colours, *self.mark_colours):
            if name not in COLOURS:
                raise ValueError(f"unknown colour {short(name)}; known: {sorted(COLOURS)}")
        if bad := [p for p in self.patterns if p not in PATTERNS]:
            raise ValueError(f"unknown patterns {bad}; known: {list(PATTERNS)}")
        if self.pattern_phase not in ("random", "fixed"):
            raise ValueError(f"pattern_phase must be 'random' or 'fixed', got {short(self.pattern_phase)}")
        if not (
            2 <= self.pattern_period <= self.pattern_size
            and 0 <= 2 * self.pattern_taper <= self.pattern_size
            and 0 <= self.pattern_contrast <= 127
        ):
            raise ValueError(
                f"pattern_size {self.pattern_size}, pattern_period {self.pattern_period}, pattern_taper "
                f"{self.pattern_taper}, pattern_contrast {self.pattern_contrast}: expected 2 <= period <= "
                "size, 0 <= 2 * taper <= size and a contrast in 0..127"
            )

    def describe(self) -> str:
        """The world in a line, for a lesson or a log (its repr lists all 30 fields)."""
        canvas = ", ".join(f"{w}×{h}" for w, h in self.canvas_sizes)
        return (
            f"{canvas} canvas; {self.n_objects_min}–{self.n_objects_max} landmarks of {self.object_min}–"
            f"{self.object_max} px ({len(self.object_shapes)} shapes, {len(self.object_colours)} colours), a detail "
            f"tile of {self.pattern_size} px at each centre (gratings: {len(self.patterns)} kinds, period "
            f"{self.pattern_period} px, contrast ±{self.pattern_contrast}); background noise ±{self.noise} grey "
            f"levels, {self.clutter} clutter strokes"
        )

    def _check_sizes(self) -> None:
        """Every number within what a scene can draw (a 10^6-pixel canvas would never render), every name text."""
        px, side = (0, 512), (1, 1024)
        check_ranges(
            self,
            ints=dict(
                noise=(0, 127),
                noise_block=(1, 64),
                clutter=(0, 100),
                n_objects_min=(1, 16),
                n_objects_max=(1, 16),
                object_min=side,
                object_max=side,
                object_gap=px,
                pattern_size=(2, 256),
                pattern_period=(2, 256),
                pattern_taper=(0, 128),
                pattern_contrast=(0, 127),
                mark_size=(1, 256),
                shape_size=(1, 256),
                dot_size=(1, 64),
                dot_gap=(0, 64),
                glyph_scale=(1, 32),
                detail_jitter=(0, 64),
                region_margin=(0, 64),
                control_min=side,
                control_max=side,
            ),
            floats=dict(min_contrast=(0.0, 442.0)),
        )  # 442: the largest RGB distance
        sizes, bg = self.canvas_sizes, self.background
        if not (
            isinstance(sizes, tuple)
            and 1 <= len(sizes) <= 16
            and all(
                isinstance(wh, tuple) and len(wh) == 2 and all(_whole(v) and 64 <= v <= 4096 for v in wh)
                for wh in sizes
            )
        ):
            raise ValueError(
                f"WorldConfig.canvas_sizes = {short(sizes)} is not allowed: expected 1 to 16 (w, h) "
                "pairs of whole pixels in [64, 4096]"
            )
        if not (isinstance(bg, tuple) and len(bg) == 3 and all(_whole(v) and 0 <= v <= 255 for v in bg)):
            raise ValueError(f"WorldConfig.background = {short(bg)} is not allowed: expected three 0..255 levels")
        for name, kind, known in (
            ("object_shapes", "shape", LANDMARK_SHAPES),
            ("object_colours", "colour", COLOURS),
            ("mark_colours", "colour", COLOURS),
            ("patterns", "pattern", PATTERNS),
            ("detail_shapes", "shape", DETAIL_SHAPES),
        ):
            v = getattr(self, name)
            if not (isinstance(v, tuple) and v and all(isinstance(x, str) and x in known for x in v)):
                raise ValueError(
                    f"WorldConfig.{name} = {short(v)}: an unknown {kind}, or none; expected a "
                    f"non-empty list of {', '.join(known)}"
                )
        if self.pattern_phase not in ("random", "fixed"):
            raise ValueError(f"pattern_phase must be 'random' or 'fixed', got {short(self.pattern_phase)}")

    def to_dict(self) -> dict:
        return {k: jsonable(v) for k, v in asdict(self).items()}


@dataclass
class Detail:
    """A small detail on a landmark: a pattern tile, one mark, one tiny shape, a few dots or a digit."""

    kind: str  # pattern | mark | shape | dots | glyph
    colour: str  # the detail's colour ("grey" for a pattern tile)
    shape: str  # the pattern's name, the tiny shape's name ("square" for marks and dots), or the glyph's digit
    size: int  # side of each element
    cells: list  # top-left corners of the elements
    phase: tuple = (0.0, 0.0)  # a pattern's grating offset in x and y, in periods (random: no systematic residue)

    @property
    def box(self) -> Box:
        xs, ys = [c[0] for c in self.cells], [c[1] for c in self.cells]
        return (min(xs), min(ys), max(xs) + self.size, max(ys) + self.size)


@dataclass
class Landmark:
    shape: str
    colour: str
    box: Box  # pixel-edge box (x1, y1, x2, y2): covers pixels x1..x2-1
    detail: Detail | None = None

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    """Everything needed to render one image; calling it renders (so a Sample can hold it lazily)."""

    size: tuple  # (w, h)
    noise_seed: int
    landmarks: list
    clutter: list  # (x1, y1, x2, y2, width, rgb) strokes
    world: WorldConfig = field(default_factory=WorldConfig)

    def __call__(self) -> Image.Image:
        return self.render()

    def render(self, details: bool = True) -> Image.Image:
        w, h = self.size
        cfg = self.world
        b = max(1, cfg.noise_block)
        rng = np.random.default_rng(self.noise_seed)
        grey = rng.integers(-cfg.noise, cfg.noise + 1, size=(-(-h // b), -(-w // b), 1), dtype=np.int16)
        small = np.clip(np.asarray(cfg.background, dtype=np.int16) + grey, 0, 255).astype(np.uint8)
        im = Image.fromarray(small, "RGB").resize((small.shape[1] * b, small.shape[0] * b), Image.NEAREST)
        im = im.crop((0, 0, w, h)) if im.size != (w, h) else im
        d = ImageDraw.Draw(im)
        for x1, y1, x2, y2, width, rgb in self.clutter:
            d.line((x1, y1, x2, y2), fill=tuple(rgb), width=width)
        for lm in self.landmarks:
            _draw_shape(d, lm.shape, lm.box, COLOURS[lm.colour])
            if details and lm.detail is not None:
                draw_detail(
                    im,
                    d,
                    lm.detail,
                    COLOURS[lm.detail.colour],
                    cfg.pattern_period,
                    cfg.pattern_taper,
                    cfg.pattern_contrast,
                )
        return im

    def region(self, k: int) -> Box:
        """Ground-truth region of landmark k: its box grown by `region_margin`, inside the canvas."""
        m = self.world.region_margin
        x1, y1, x2, y2 = self.landmarks[k].box
        return (max(0, x1 - m), max(0, y1 - m), min(self.size[0], x2 + m), min(self.size[1], y2 + m))

    def to_dict(self) -> dict:
        def detail(d):
            return None if d is None else {**d.__dict__, "cells": [list(c) for c in d.cells], "phase": list(d.phase)}

        return {
            "size": list(self.size),
            "noise_seed": self.noise_seed,
            "clutter": [list(c[:5]) + [list(c[5])] for c in self.clutter],
            "landmarks": [
                {"shape": lm.shape, "colour": lm.colour, "box": list(lm.box), "detail": detail(lm.detail)}
                for lm in self.landmarks
            ],
            "world": self.world.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        def detail(x):
            return (
                None
                if x is None
                else Detail(
                    **{**x, "cells": [tuple(c) for c in x["cells"]], "phase": tuple(x.get("phase", (0.0, 0.0)))}
                )
            )

        lms = [Landmark(lm["shape"], lm["colour"], tuple(lm["box"]), detail(lm["detail"])) for lm in d["landmarks"]]
        clutter = [tuple(c[:5]) + (tuple(c[5]),) for c in d["clutter"]]
        return cls(tuple(d["size"]), d["noise_seed"], lms, clutter, WorldConfig(**d.get("world", {})))


def region_input_box(box: Box, frame: Frame) -> tuple[int, int, int, int]:
    """An original-pixel region -> the smallest integer input-frame box whose crop still covers it."""
    x1, y1, x2, y2 = frame.to_input(box)
    r = lambda v: round(v, 6)  # noqa: E731  (6 / 6 * 6 must not become 6.0000001 -> ceil 7)
    return (
        max(0, math.floor(r(x1))),
        max(0, math.floor(r(y1))),
        min(frame.input_w, math.ceil(r(x2))),
        min(frame.input_h, math.ceil(r(y2))),
    )


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, box: Box, rgb) -> None:
    x1, y1, x2, y2 = box[0], box[1], box[2] - 1, box[3] - 1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if shape == "circle":
        d.ellipse((x1, y1, x2, y2), fill=rgb)
    elif shape == "square":
        d.rectangle((x1, y1, x2, y2), fill=rgb)
    elif shape == "triangle":
        d.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=rgb)
    elif shape == "diamond":
        d.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=rgb)
    else:
        raise ValueError(f"unknown landmark shape {short(shape)}; known: circle, square, triangle, diamond")


def jsonable(v):
    return [jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v
