"""A procedural world where looking again is necessary: large coloured landmarks carrying tiny details.

Each image is a light, slightly noisy canvas larger than the model's coarse view, with 2-4 landmark
shapes in distinct colours (so a colour names an object) that are easy to find at the coarse view.
Each landmark carries a small detail near its centre (a coloured mark, a tiny shape or a few dots)
that covers less than one model-input pixel at the coarse view and several pixels once the
landmark's box is cropped and zoomed. All geometry lives in `WorldConfig`; task families and their
difficulty knobs in `TaskConfig`. Everything is a pure function of (seed, family, index).
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from PIL import Image, ImageDraw

from .regions import Box, Frame, ViewConfig, crop_and_zoom

# Named colours (RGB). A name in a question or answer always means this colour.
COLOURS = {
    "red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (245, 205, 30),
    "purple": (140, 60, 190), "orange": (245, 135, 30), "pink": (240, 120, 185), "cyan": (40, 200, 215),
    "brown": (125, 80, 40), "black": (20, 20, 20), "white": (255, 255, 255), "grey": (128, 128, 128),
}
ALTERNATIVES = {"grey": ["gray"], "cross": ["plus"], "diamond": ["rhombus"]}  # accepted spellings
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_CLUTTER = [(205, 200, 190), (190, 188, 182), (215, 210, 200), (175, 172, 168)]  # muted, never a palette colour
FAMILIES = ("read_one", "compare_two", "count", "control")  # the default mix
HARD_FAMILIES = ("glyph",)  # opt-in: a digit drawn in a 3x5 pixel font (glyphs are slow for a tiny model to learn)
ALL_FAMILIES = FAMILIES + HARD_FAMILIES
# 3x5 bitmaps of the digits, rows top to bottom
GLYPHS = {"0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
          "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
          "8": "111101111101111", "9": "111101111001111"}

QUESTIONS = {
    "read_one/colour": ["What colour is the mark on the {obj}?", "Which colour is the small mark on the {obj}?",
                        "What is the colour of the mark on the {obj}?"],
    "read_one/shape": ["What shape is the mark on the {obj}?", "Which shape is drawn on the {obj}?",
                       "What is the shape of the small mark on the {obj}?"],
    "compare_two": ["Do the marks on the {a} and the {b} have the same colour?",
                    "Are the marks on the {a} and the {b} the same colour?",
                    "Is the mark on the {a} the same colour as the mark on the {b}?"],
    "count": ["How many dots are on the {obj}?", "How many small dots does the {obj} have?",
              "Count the dots on the {obj}."],
    "glyph": ["What digit is written on the {obj}?", "Which digit is on the {obj}?",
              "What number is drawn on the {obj}?"],
    "control/colour": ["What colour is the {shape}?", "Which colour is the large {shape}?"],
    "control/shape": ["What shape is the {colour} object?", "Which shape is the large {colour} object?"],
}


@dataclass(frozen=True)
class WorldConfig:
    """Geometry and appearance of the synthetic world (original pixels)."""

    canvas_sizes: tuple = ((672, 672), (672, 504), (504, 672))  # (w, h) choices; 672 -> 112 is scale 1/6
    background: tuple = (242, 240, 234)  # canvas colour (light)
    noise: int = 4  # background noise amplitude in grey levels
    noise_block: int = 4  # noise is constant over blocks of this side (keeps PNGs small)
    clutter: int = 6  # muted strokes per image, kept away from the landmarks
    n_objects_min: int = 2  # landmarks per image (compare_two uses at least 2)
    n_objects_max: int = 4
    object_min: int = 36  # landmark side range in pixels (36-48 -> 6-8 px in a 112 view)
    object_max: int = 48
    object_gap: int = 24  # minimum free space between landmarks and to the border
    object_shapes: tuple = ("circle", "square", "triangle", "diamond")  # landmark shapes
    object_colours: tuple = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "brown")
    mark_size: int = 5  # side of a colour mark (5 px -> 0.83 px at the coarse view)
    mark_colours: tuple = ("red", "green", "blue", "yellow", "black", "white")  # detail colours (answers)
    detail_shapes: tuple = ("square", "cross", "ring", "triangle")  # shapes of tiny shape details (answers)
    shape_size: int = 5  # side of a tiny shape detail
    dot_size: int = 3  # side of one dot of the count family
    dot_gap: int = 2  # free pixels between dots
    glyph_scale: int = 1  # glyph family: pixels per font pixel (1 -> a 3x5 px digit)
    detail_jitter: int = 2  # how far (px) a detail may sit off the landmark's centre
    min_contrast: float = 150.0  # minimum RGB distance between a detail and its landmark
    region_margin: int = 2  # ground-truth region = landmark box grown by this many pixels
    control_min: int = 96  # side range of the landmark a control question asks about (clear at coarse view)
    control_max: int = 144

    def __post_init__(self):  # JSON / CLI give lists; keep tuples so the config stays hashable
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(tuple(x) if isinstance(x, list) else x for x in v))
        if self.object_min > self.object_max or self.n_objects_min > self.n_objects_max:
            raise ValueError("WorldConfig: *_min must not exceed *_max")
        for name in (*self.object_colours, *self.mark_colours):
            if name not in COLOURS:
                raise ValueError(f"unknown colour {name!r}; known: {sorted(COLOURS)}")

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TaskConfig:
    """Task families' difficulty knobs."""

    read_kinds: tuple = ("colour", "shape")  # what read_one asks about the detail
    control_kinds: tuple = ("colour", "shape")  # what control asks about the (large) landmark
    count_max: int = 4  # count answers are 1..count_max (at most 9)
    distractor_details: bool = True  # other landmarks carry details of the same kind (else plain)

    def __post_init__(self):
        for f in ("read_kinds", "control_kinds"):
            v = getattr(self, f)
            object.__setattr__(self, f, (v,) if isinstance(v, str) else tuple(v))
        if not 1 <= self.count_max <= 9:
            raise ValueError(f"count_max must be in 1..9, got {self.count_max}")

    def to_dict(self) -> dict:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass
class Detail:
    """A small detail on a landmark: one mark, one tiny shape, or a few dots (pixel-edge boxes)."""

    kind: str  # mark | shape | dots
    colour: str
    shape: str  # the tiny shape's name ("square" for marks and dots), or the glyph's digit
    size: int  # side of each element
    cells: list  # top-left corners of the elements

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
                _draw_detail(d, lm.detail)
        return im

    def region(self, k: int) -> Box:
        """Ground-truth region of landmark k: its box grown by `region_margin`, inside the canvas."""
        m = self.world.region_margin
        x1, y1, x2, y2 = self.landmarks[k].box
        return (max(0, x1 - m), max(0, y1 - m), min(self.size[0], x2 + m), min(self.size[1], y2 + m))

    def to_dict(self) -> dict:
        def detail(d):
            return None if d is None else {**d.__dict__, "cells": [list(c) for c in d.cells]}

        return {"size": list(self.size), "noise_seed": self.noise_seed,
                "clutter": [list(c[:5]) + [list(c[5])] for c in self.clutter],
                "landmarks": [{"shape": lm.shape, "colour": lm.colour, "box": list(lm.box), "detail": detail(lm.detail)}
                              for lm in self.landmarks], "world": self.world.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        def detail(x):
            return None if x is None else Detail(**{**x, "cells": [tuple(c) for c in x["cells"]]})

        lms = [Landmark(lm["shape"], lm["colour"], tuple(lm["box"]), detail(lm["detail"])) for lm in d["landmarks"]]
        clutter = [tuple(c[:5]) + (tuple(c[5]),) for c in d["clutter"]]
        return cls(tuple(d["size"]), d["noise_seed"], lms, clutter, WorldConfig(**d.get("world", {})))


@dataclass
class Task:
    """One generated question: the scene, the question, its answers and which landmarks to look at."""

    scene: Scene
    question: str
    answers: list
    family: str
    kind: str  # colour | shape | count | compare
    targets: list  # landmark indices in crop order ([] for control: the answer is visible at the coarse view)
    asked: int  # the landmark the question names (first of the targets, or the control object)
    seen: list  # what each crop shows (e.g. ["red"]), for the reference rationale
    seed: str  # the rng seed string, for provenance

    @property
    def regions(self) -> list:
        return [self.scene.region(k) for k in self.targets]

    @property
    def details(self) -> list:
        return [self.scene.landmarks[k].detail.box for k in self.targets]


def answers_for(value: str) -> list[str]:
    """Canonical answer first, then accepted alternatives ("grey"/"gray", "3"/"three")."""
    if value.isdigit():
        return [value, NUMBERS[int(value)]]
    return [value, *ALTERNATIVES.get(value, [])]


def make_task(family: str, seed: int, index: int, world: WorldConfig | None = None,
              tasks: TaskConfig | None = None) -> Task:
    """Task `index` of `family` for dataset `seed`: deterministic, independent of every other index."""
    world, tasks = world or WorldConfig(), tasks or TaskConfig()
    if family not in _GENERATORS:
        raise ValueError(f"unknown task family {family!r}; choose from {ALL_FAMILIES}")
    key = f"r3lab-world:{seed}:{family}:{index}"
    rng = random.Random(key)
    return _GENERATORS[family](rng, _balanced(seed, family, index), world, tasks, key)


def _balanced(seed: int, family: str, index: int):
    """Answer class for `index`: a fresh permutation of the classes per block, so answers are balanced."""
    def pick(classes):
        k = len(classes)
        perm = list(classes)
        random.Random(f"r3lab-balance:{seed}:{family}:{index // k}").shuffle(perm)
        return perm[index % k]
    return pick


# -- task families -----------------------------------------------------------------------------
def _read_one(rng, pick, world, tasks, key):
    classes = [(k, v) for k in tasks.read_kinds for v in (world.mark_colours if k == "colour" else world.detail_shapes)]
    kind, answer = pick(classes)
    scene = _scene(rng, world, 1, [answer], "mark" if kind == "colour" else "shape", tasks.distractor_details)
    q = rng.choice(QUESTIONS[f"read_one/{kind}"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(answer), "read_one", kind, [0], 0, [answer], key)


def _compare_two(rng, pick, world, tasks, key):
    same = pick(["yes", "no"]) == "yes"
    a = rng.choice(world.mark_colours)
    b = a if same else rng.choice([c for c in world.mark_colours if c != a])
    scene = _scene(rng, world, 2, [a, b], "mark", tasks.distractor_details)
    q = rng.choice(QUESTIONS["compare_two"]).format(a=scene.landmarks[0].name, b=scene.landmarks[1].name)
    return Task(scene, q, answers_for("yes" if same else "no"), "compare_two", "compare", [0, 1], 0, [a, b], key)


def _count(rng, pick, world, tasks, key):
    n = pick(list(range(1, tasks.count_max + 1)))
    scene = _scene(rng, world, 1, [n], "dots", tasks.distractor_details, count_max=tasks.count_max)
    q = rng.choice(QUESTIONS["count"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(str(n)), "count", "count", [0], 0, [str(n)], key)


def _control(rng, pick, world, tasks, key):
    classes = [(k, v) for k in tasks.control_kinds
               for v in (world.object_colours if k == "colour" else world.object_shapes)]
    kind, answer = pick(classes)
    scene = _scene(rng, world, 1, [None], "mark", True, big_first=True,
                   first=("colour" if kind == "colour" else "shape", answer))
    lm = scene.landmarks[0]
    if kind == "colour":
        q = rng.choice(QUESTIONS["control/colour"]).format(shape=lm.shape)
    else:
        q = rng.choice(QUESTIONS["control/shape"]).format(colour=lm.colour)
    return Task(scene, q, answers_for(answer), "control", kind, [], 0, [answer], key)


def _glyph(rng, pick, world, tasks, key):
    d = pick(sorted(GLYPHS))
    scene = _scene(rng, world, 1, [d], "glyph", tasks.distractor_details)
    q = rng.choice(QUESTIONS["glyph"]).format(obj=scene.landmarks[0].name)
    return Task(scene, q, answers_for(d), "glyph", "glyph", [0], 0, [d], key)


_GENERATORS = {"read_one": _read_one, "compare_two": _compare_two, "count": _count, "control": _control,
               "glyph": _glyph}


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
        if detail_kind in ("mark", "shape"):  # the landmark colour must contrast with the detail colour
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
            if detail_kind == "mark":
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


def _draw_detail(d: ImageDraw.ImageDraw, det: Detail) -> None:
    ys, xs = np.nonzero(detail_mask("square" if det.kind in ("dots", "glyph") else det.shape, det.size))
    pts = [(int(cx + x), int(cy + y)) for cx, cy in det.cells for x, y in zip(xs, ys)]
    d.point(pts, fill=COLOURS[det.colour])


# -- illegibility at the coarse view, legibility after crop-and-zoom ------------------------------
def _detail_sizes(world: WorldConfig, kind: str | None) -> list[int]:
    sizes = {"mark": world.mark_size, "shape": world.shape_size, "dots": world.dot_size,
             "glyph": 5 * world.glyph_scale}  # a glyph is read as a whole: its height
    if kind is not None and kind not in sizes:
        raise ValueError(f"detail kind must be one of {sorted(sizes)} or None, got {kind!r}")
    return list(sizes.values()) if kind is None else [sizes[kind]]


def coarse_detail_extent(world: WorldConfig | None = None, view: ViewConfig | None = None,
                         kind: str | None = None) -> float:
    """Largest side of a detail element (of `kind`, default any) in model-input pixels of the coarse view.

    Below 1 the detail covers less than one pixel of what the model sees without cropping.
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


def region_input_box(box: Box, frame: Frame) -> tuple[int, int, int, int]:
    """An original-pixel region -> the smallest integer input-frame box whose crop still covers it."""
    x1, y1, x2, y2 = frame.to_input(box)
    r = lambda v: round(v, 6)  # noqa: E731  (6 / 6 * 6 must not become 6.0000001 -> ceil 7)
    return (max(0, math.floor(r(x1))), max(0, math.floor(r(y1))),
            min(frame.input_w, math.ceil(r(x2))), min(frame.input_h, math.ceil(r(y2))))


def coarse_residual(scene: Scene, view: ViewConfig | None = None) -> dict:
    """Measured, not computed: how much the details change the coarse view vs the zoomed crops.

    Renders the scene with and without details, resizes both as the model sees them, and reports the
    largest per-channel change (grey levels 0-255) at the coarse view and inside the zoomed crops of
    the landmarks' regions. A large coarse residual means a strong model could still guess.
    """
    view = view or ViewConfig()
    a, b = scene.render(True), scene.render(False)
    frame = Frame.of(scene.size, view)
    ca, cb = (np.asarray(x.resize(frame.input_size, Image.BICUBIC), np.int16) for x in (a, b))
    zoom = 0
    for k in range(len(scene.landmarks)):
        box = region_input_box(scene.region(k), frame)
        za, zb = (np.asarray(crop_and_zoom(x, box, view).image, np.int16) for x in (a, b))
        zoom = max(zoom, int(np.abs(za - zb).max()))
    return {"coarse_max": int(np.abs(ca - cb).max()), "zoomed_max": zoom}


def _jsonable(v):
    return [_jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v
