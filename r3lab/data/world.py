"""A procedural world where looking again is necessary: large coloured landmarks carrying tiny details.

Each image is a light, slightly noisy canvas larger than the model's coarse view, with 2-3 landmark
shapes in distinct colours (so a colour names an object) that are easy to find at the coarse view.
Each landmark carries a small detail near its centre. The default detail is a *pattern*: a grey tile
holding a fine grating (horizontal, vertical, rising or falling stripes, or checks) whose mean is the
same grey for every pattern and whose contrast fades smoothly to the tile's edge, so the coarse view
(one sixth of the resolution) shows the same grey dot whatever the pattern, while the zoomed crop shows
the stripes. The other details (a coloured mark, a tiny shape, a few dots, a digit) are opt-in; a colour
mark survives downsampling as a tint, which makes the crop a pointer rather than a magnifier.
All geometry lives in `WorldConfig`; this module lays out and renders scenes. The questions asked about
them are in `r3lab.data.tasks`, the measured (il)legibility of their details in `r3lab.data.legible`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from ..core.regions import Box, Frame

# Named colours (RGB). A name in a question or answer always means this colour.
COLOURS = {
    "red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (245, 205, 30),
    "purple": (140, 60, 190), "orange": (245, 135, 30), "pink": (240, 120, 185), "cyan": (40, 200, 215),
    "brown": (125, 80, 40), "black": (20, 20, 20), "white": (255, 255, 255), "grey": (128, 128, 128),
}
_CLUTTER = [(205, 200, 190), (190, 188, 182), (215, 210, 200), (175, 172, 168)]  # muted, never a palette colour
# 3x5 bitmaps of the digits, rows top to bottom
PATTERNS = ("horizontal", "vertical", "rising", "falling", "checked")  # gratings of a pattern detail (answers)
GLYPHS = {"0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
          "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
          "8": "111101111101111", "9": "111101111001111"}


@dataclass(frozen=True)
class WorldConfig:
    """Geometry and appearance of the synthetic world (original pixels)."""

    canvas_sizes: tuple = ((672, 672),)  # (w, h) choices; 672 -> 112 is scale 1/6
    background: tuple = (242, 240, 234)  # canvas colour (light)
    noise: int = 4  # background noise amplitude in grey levels
    noise_block: int = 4  # noise is constant over blocks of this side (keeps PNGs small)
    clutter: int = 6  # muted strokes per image, kept away from the landmarks
    n_objects_min: int = 2  # landmarks per image (compare_two uses at least 2)
    n_objects_max: int = 3
    object_min: int = 100  # landmark side range in pixels (100-130 -> 17-22 px in a 112 view: localisable)
    object_max: int = 130
    object_gap: int = 24  # minimum free space between landmarks and to the border
    object_shapes: tuple = ("circle", "square", "triangle", "diamond")  # landmark shapes
    object_colours: tuple = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "brown")
    patterns: tuple = PATTERNS  # the gratings a pattern detail shows (answers of the default families)
    pattern_size: int = 20  # side of a pattern tile: a 3-px grey dot at the coarse view, ~20 px zoomed
    pattern_period: int = 4  # grating period in pixels: far below the coarse view's resolution (12 px)
    pattern_taper: int = 10  # pixels over which the grating's contrast fades to the tile's edge (size / 2: a Hann window)
    pattern_contrast: int = 110  # grating amplitude around the tile's grey (128), in grey levels
    mark_size: int = 11  # side of a colour mark: 1.8 px at the coarse view, >= 10.6 px zoomed (5 px stays under a patch)
    mark_colours: tuple = ("red", "green", "blue", "yellow", "black", "white")  # detail colours (answers)
    detail_shapes: tuple = ("square", "cross", "ring", "triangle")  # shapes of tiny shape details (answers)
    shape_size: int = 5  # side of a tiny shape detail
    dot_size: int = 3  # side of one dot of the count family
    dot_gap: int = 2  # free pixels between dots
    glyph_scale: int = 1  # glyph family: pixels per font pixel (1 -> a 3x5 px digit)
    detail_jitter: int = 2  # how far (px) a detail may sit off the landmark's centre
    min_contrast: float = 150.0  # minimum RGB distance between a detail and its landmark
    region_margin: int = 2  # ground-truth region = landmark box grown by this many pixels
    control_min: int = 100  # side range of the landmark a control question asks about (clear at coarse view)
    control_max: int = 130

    def __post_init__(self):  # JSON / CLI give lists; keep tuples so the config stays hashable
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(tuple(x) if isinstance(x, list) else x for x in v))
        for lo, hi in (("object_min", "object_max"), ("n_objects_min", "n_objects_max"), ("control_min", "control_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"WorldConfig: {lo}={getattr(self, lo)} exceeds {hi}={getattr(self, hi)}; "
                                 f"raise {hi} or lower {lo}")
        for name in (*self.object_colours, *self.mark_colours):
            if name not in COLOURS:
                raise ValueError(f"unknown colour {name!r}; known: {sorted(COLOURS)}")
        if bad := [p for p in self.patterns if p not in PATTERNS]:
            raise ValueError(f"unknown patterns {bad}; known: {list(PATTERNS)}")
        if not (2 <= self.pattern_period <= self.pattern_size and 0 <= 2 * self.pattern_taper <= self.pattern_size
                and 0 <= self.pattern_contrast <= 127):
            raise ValueError(f"pattern_size {self.pattern_size}, pattern_period {self.pattern_period}, pattern_taper "
                             f"{self.pattern_taper}, pattern_contrast {self.pattern_contrast}: expected 2 <= period <= "
                             "size, 0 <= 2 * taper <= size and a contrast in 0..127")

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


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
                _draw_detail(im, d, lm.detail, cfg)
        return im

    def region(self, k: int) -> Box:
        """Ground-truth region of landmark k: its box grown by `region_margin`, inside the canvas."""
        m = self.world.region_margin
        x1, y1, x2, y2 = self.landmarks[k].box
        return (max(0, x1 - m), max(0, y1 - m), min(self.size[0], x2 + m), min(self.size[1], y2 + m))

    def to_dict(self) -> dict:
        def detail(d):
            return None if d is None else {**d.__dict__, "cells": [list(c) for c in d.cells], "phase": list(d.phase)}

        return {"size": list(self.size), "noise_seed": self.noise_seed,
                "clutter": [list(c[:5]) + [list(c[5])] for c in self.clutter],
                "landmarks": [{"shape": lm.shape, "colour": lm.colour, "box": list(lm.box), "detail": detail(lm.detail)}
                              for lm in self.landmarks], "world": self.world.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        def detail(x):
            return None if x is None else Detail(**{**x, "cells": [tuple(c) for c in x["cells"]],
                                                    "phase": tuple(x.get("phase", (0.0, 0.0)))})

        lms = [Landmark(lm["shape"], lm["colour"], tuple(lm["box"]), detail(lm["detail"])) for lm in d["landmarks"]]
        clutter = [tuple(c[:5]) + (tuple(c[5]),) for c in d["clutter"]]
        return cls(tuple(d["size"]), d["noise_seed"], lms, clutter, WorldConfig(**d.get("world", {})))


def region_input_box(box: Box, frame: Frame) -> tuple[int, int, int, int]:
    """An original-pixel region -> the smallest integer input-frame box whose crop still covers it."""
    x1, y1, x2, y2 = frame.to_input(box)
    r = lambda v: round(v, 6)  # noqa: E731  (6 / 6 * 6 must not become 6.0000001 -> ceil 7)
    return (max(0, math.floor(r(x1))), max(0, math.floor(r(y1))),
            min(frame.input_w, math.ceil(r(x2))), min(frame.input_h, math.ceil(r(y2))))

# -- scene layout ------------------------------------------------------------------------------
def _scene(rng, world: WorldConfig, n_min, asked, detail_kind, distractors, count_max=4, big_first=False,
           first=None) -> Scene:
    """Lay out landmarks, the asked ones first; `asked[k]` fixes landmark k's detail (colour, shape, count).

    `first=("colour"|"shape", value)` fixes landmark 0's own colour or shape (control questions); a
    shape named in a question is made unique in the scene.
    """
    w, h = rng.choice(world.canvas_sizes)
    n = rng.randint(max(n_min, world.n_objects_min), max(n_min, world.n_objects_max))
    boxes = _layout(rng, world, (w, h), n, big_first)
    colours = list(world.object_colours)
    rng.shuffle(colours)
    if first and first[0] == "colour":
        colours.remove(first[1])
        colours.insert(0, first[1])
    landmarks = []
    for k, box in enumerate(boxes):
        value = asked[k] if k < len(asked) else None
        if k == 0 and first and first[0] == "shape":
            shape = first[1]
        elif first and k > 0:  # the question names landmark 0 by its shape or colour: keep it unique
            shape = rng.choice([s for s in world.object_shapes if s != landmarks[0].shape] or world.object_shapes)
        else:
            shape = rng.choice(world.object_shapes)
        dcol = None
        if detail_kind == "pattern":  # a grey tile: every landmark colour shows it
            colour = colours[0]
        elif detail_kind in ("mark", "shape"):  # the landmark colour must contrast with the detail colour
            dcol = value if (detail_kind == "mark" and value is not None) else rng.choice(world.mark_colours)
            if k == 0 and first and first[0] == "colour":
                ok = [c for c in world.mark_colours if _contrast(c, first[1]) >= world.min_contrast]
                dcol = rng.choice(ok or [dcol])
            colour = next((c for c in colours if _contrast(c, dcol) >= world.min_contrast), None)
            if colour is None:
                raise ValueError(f"no landmark colour contrasts with detail colour {dcol!r} at min_contrast "
                                 f"{world.min_contrast}; lower WorldConfig.min_contrast or add object_colours")
        else:
            colour = colours[0]
        colours.remove(colour)
        lm = Landmark(shape, colour, box)
        if value is not None or distractors:
            if detail_kind == "pattern":
                pat = value if value is not None else rng.choice(world.patterns)
                lm.detail = _place(rng, world, lm, "pattern", "grey", pat, world.pattern_size, 1)
                lm.detail.phase = (round(rng.random(), 4), round(rng.random(), 4))
            elif detail_kind == "mark":
                lm.detail = _place(rng, world, lm, "mark", dcol, "square", world.mark_size, 1)
            elif detail_kind == "shape":
                sh = value if value is not None else rng.choice(world.detail_shapes)
                lm.detail = _place(rng, world, lm, "shape", dcol, sh, world.shape_size, 1)
            else:  # dots and glyphs: black or white, whichever contrasts more
                dcol = "white" if _contrast(colour, "white") > _contrast(colour, "black") else "black"
                if detail_kind == "glyph":
                    digit = value if value is not None else rng.choice(sorted(GLYPHS))
                    lm.detail = _place(rng, world, lm, "glyph", dcol, digit, world.glyph_scale, 0)
                else:
                    dots = value if value is not None else rng.randint(1, count_max)
                    lm.detail = _place(rng, world, lm, "dots", dcol, "square", world.dot_size, dots)
        landmarks.append(lm)
    clutter = _clutter(rng, world, (w, h), boxes)
    return Scene((w, h), rng.getrandbits(63), landmarks, clutter, world)


def _layout(rng, world, size, n, big_first) -> list[Box]:
    w, h = size
    g = world.object_gap
    for _ in range(100):  # rejection sampling; a fresh start when the canvas is too crowded
        boxes = []
        for k in range(n):
            big = big_first and k == 0
            lo, hi = (world.control_min, world.control_max) if big else (world.object_min, world.object_max)
            for _ in range(200):
                s = rng.randint(lo, hi)
                if s + 2 * g > min(w, h):
                    raise ValueError(f"a {s}px landmark with gap {g} does not fit a {w}x{h} canvas")
                x, y = rng.randint(g, w - g - s), rng.randint(g, h - g - s)
                b = (x, y, x + s, y + s)
                if all(_apart(b, o, g) for o in boxes):
                    boxes.append(b)
                    break
            else:
                break
        if len(boxes) == n:
            return boxes
    raise ValueError(f"could not place {n} landmarks on a {w}x{h} canvas; lower n_objects_max or object_gap")


def _place(rng, world, lm: Landmark, kind, colour, shape, size, count) -> Detail:
    """Put `count` elements of side `size` inside the landmark's inner area, near its centre.

    A glyph (`count` 0) is the lit font pixels of digit `shape`, each a `size` x `size` block.
    """
    cx, cy, half = _anchor(lm.shape, lm.box)
    pitch = size + world.dot_gap
    if kind == "glyph":
        offsets = [(i % 3 * size, i // 3 * size) for i, on in enumerate(GLYPHS[shape]) if on == "1"]
    elif count == 1:
        offsets = [(0, 0)]
    else:  # distinct cells of a 3x3 grid (2x2 is too regular: the pattern would give the count away)
        cells = [(i, j) for i in range(3) for j in range(3)]
        offsets = [(i * pitch, j * pitch) for i, j in rng.sample(cells, count)]
        offsets = [(x - min(o[0] for o in offsets), y - min(o[1] for o in offsets)) for x, y in offsets]
    ew = max(o[0] for o in offsets) + size
    eh = max(o[1] for o in offsets) + size
    room = int(half - max(ew, eh) / 2)
    if room < 0:
        raise ValueError(f"a {ew}x{eh} detail does not fit on a {lm.box[2] - lm.box[0]}px {lm.shape}; "
                         "raise object_min or lower mark_size/dot_size")
    j = min(world.detail_jitter, room)
    x0 = int(round(cx - ew / 2)) + rng.randint(-j, j)
    y0 = int(round(cy - eh / 2)) + rng.randint(-j, j)
    return Detail(kind, colour, shape, size, [(x0 + ox, y0 + oy) for ox, oy in offsets])


def _anchor(shape: str, box: Box) -> tuple[float, float, float]:
    """Centre of the shape's inscribed circle and the half-side of the square inside it."""
    x1, y1, x2, y2 = box
    s = x2 - x1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if shape == "triangle":  # apex up, base down: incircle radius s / (1 + sqrt(5))
        r = s / (1 + math.sqrt(5))
        return cx, y2 - r, r / math.sqrt(2)
    if shape == "diamond":
        return cx, cy, s / 4
    if shape == "circle":
        return cx, cy, s / (2 * math.sqrt(2))
    return cx, cy, s / 2 - 1


def _clutter(rng, world, size, boxes):
    w, h = size
    out = []
    for _ in range(world.clutter):
        for _ in range(20):
            x, y = rng.randint(0, w - 1), rng.randint(0, h - 1)
            ang, length = rng.uniform(0, math.pi), rng.randint(8, 24)
            x2, y2 = int(x + length * math.cos(ang)), int(y + length * math.sin(ang))
            b = (min(x, x2) - 2, min(y, y2) - 2, max(x, x2) + 3, max(y, y2) + 3)
            if all(_apart(b, o, world.region_margin + 4) for o in boxes):
                out.append((x, y, x2, y2, rng.randint(1, 2), rng.choice(_CLUTTER)))
                break
    return out


def _apart(a: Box, b: Box, gap: float) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _contrast(a: str, b: str) -> float:
    return math.dist(COLOURS[a], COLOURS[b])


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
        raise ValueError(f"unknown landmark shape {shape!r}; known: circle, square, triangle, diamond")


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
    raise ValueError(f"unknown detail shape {shape!r}; known: square, ring, cross, triangle")


@lru_cache(maxsize=256)
def pattern_tile(name: str, size: int, period: int, taper: int, contrast: int,
                 phase: tuple = (0.0, 0.0)) -> np.ndarray:
    """The `size` x `size` grey levels of a pattern detail: a grating of `period` px around grey 128.

    The grating is a cosine under a window whose contrast fades over `taper` px to the edge (a Hann
    window when `taper` is half the size): every pattern then has the same mean and almost no
    low-frequency content, so a view that averages over more than a period shows the same grey dot.
    `phase` shifts the grating (in periods along x and y): a random phase per tile leaves what little
    leaks into the coarse view with a random sign, so nothing there correlates with the pattern.
    """
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; known: {list(PATTERNS)}")
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    x, y = x + phase[0] * period, y + phase[1] * period
    w = 2 * math.pi / period
    grating = {"horizontal": lambda: np.cos(w * y), "vertical": lambda: np.cos(w * x),
               "rising": lambda: np.cos(w * (x + y) / math.sqrt(2)), "falling": lambda: np.cos(w * (x - y) / math.sqrt(2)),
               "checked": lambda: np.cos(w * x) * np.cos(w * y)}[name]()
    ramp = np.ones(size)
    for i in range(taper):  # raised-cosine edges
        ramp[i] = ramp[size - 1 - i] = 0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / taper)
    return np.clip(np.round(128 + contrast * np.outer(ramp, ramp) * grating), 0, 255).astype(np.uint8)


def _draw_detail(im: Image.Image, d: ImageDraw.ImageDraw, det: Detail, world: WorldConfig) -> None:
    if det.kind == "pattern":
        tile = pattern_tile(det.shape, det.size, world.pattern_period, world.pattern_taper, world.pattern_contrast,
                            tuple(det.phase))
        im.paste(Image.fromarray(tile, "L").convert("RGB"), tuple(det.cells[0]))
        return
    ys, xs = np.nonzero(detail_mask("square" if det.kind in ("dots", "glyph") else det.shape, det.size))
    pts = [(int(cx + x), int(cy + y)) for cx, cy in det.cells for x, y in zip(xs, ys)]
    d.point(pts, fill=COLOURS[det.colour])


def _jsonable(v):
    return [_jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v
