"""Scene layout: where the landmarks of a scene go, their colours and shapes, and where each detail sits on its
landmark. `make_scene` is what the task families call; everything is drawn from the rng it is given."""

from __future__ import annotations

import math

from ..core.regions import Box
from ..core.settings import short
from .details import GLYPHS
from .world import CLUTTER, COLOURS, Detail, Landmark, Scene, WorldConfig


def make_scene(
    rng, world: WorldConfig, n_min, asked, detail_kind, distractors, count_max=4, big_first=False, first=None
) -> Scene:
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
                raise ValueError(
                    f"no landmark colour contrasts with detail colour {short(dcol)} at min_contrast "
                    f"{world.min_contrast}; lower WorldConfig.min_contrast or add object_colours"
                )
        else:
            colour = colours[0]
        colours.remove(colour)
        lm = Landmark(shape, colour, box)
        if value is not None or distractors:
            if detail_kind == "pattern":
                pat = value if value is not None else rng.choice(world.patterns)
                lm.detail = _place(rng, world, lm, "pattern", "grey", pat, world.pattern_size, 1)
                phase = (round(rng.random(), 4), round(rng.random(), 4))  # drawn either way: layouts stay the same
                lm.detail.phase = phase if world.pattern_phase == "random" else (0.0, 0.0)
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
        raise ValueError(
            f"a {ew}x{eh} detail does not fit on a {lm.box[2] - lm.box[0]}px {lm.shape}; "
            "raise object_min or lower mark_size/dot_size"
        )
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
                out.append((x, y, x2, y2, rng.randint(1, 2), rng.choice(CLUTTER)))
                break
    return out


def _apart(a: Box, b: Box, gap: float) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _contrast(a: str, b: str) -> float:
    return math.dist(COLOURS[a], COLOURS[b])
