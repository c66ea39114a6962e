"""Tiny fixtures shared by tests, notebooks and benchmarks (no weights are downloaded)."""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

from ..core.crop_calls import find_crop_calls, format_crop_call
from ..core.regions import Frame, ViewConfig
from ..core.trajectory import MODEL, CropEvent, Piece, Trajectory, crop_piece
from ..data.sample import Sample
from ..model.policy import Policy
from ..model.tiny import TinyConfig, build_tiny


@lru_cache(maxsize=4)
def _cached(seed: int, view: ViewConfig) -> Policy:
    return build_tiny(TinyConfig(seed=seed), view=view)


def tiny_policy(seed: int = 0, view: ViewConfig | None = None, fresh: bool = False) -> Policy:
    """An untrained r3-tiny. Cached per (seed, view) unless `fresh` (tests that train need fresh)."""
    view = view or ViewConfig()
    return build_tiny(TinyConfig(seed=seed), view=view) if fresh else _cached(seed, view)


def toy_image(size: tuple[int, int] = (448, 336), seed: int = 0) -> Image.Image:
    """A light canvas with a red disc and a blue square, each with a small mark."""
    im = Image.new("RGB", size, (245, 245, 240))
    d = ImageDraw.Draw(im)
    w, h = size
    d.ellipse((w * 0.1, h * 0.1, w * 0.35, h * 0.45), fill=(220, 40, 40))
    d.rectangle((w * 0.55, h * 0.5, w * 0.85, h * 0.9), fill=(40, 60, 220))
    d.rectangle((w * 0.2, h * 0.25, w * 0.23, h * 0.29), fill=(250, 220, 30))
    d.rectangle((w * 0.68, h * 0.68, w * 0.71, h * 0.72), fill=(40, 200, 60))
    return im


def toy_trajectory(
    policy: Policy,
    size: tuple[int, int] = (448, 336),
    answer: str = "red",
    family: str = "read_one",
    crop: str = "disc",
):
    """A finished, tokenized reference trajectory on `toy_image`: a crop call, the zoomed crop, an answer.

    crop: "disc" (the red disc, which is also the ground-truth region) or "square" (the blue square).
    """
    w, h = size
    regions = {"disc": (w * 0.1, h * 0.1, w * 0.35, h * 0.45), "square": (w * 0.55, h * 0.5, w * 0.85, h * 0.9)}
    gt = tuple(int(v) for v in regions["disc"])
    traj = Trajectory.start(
        toy_image(size),
        "What colour is the disc?",
        policy.view,
        policy.prompt,
        answers=[answer],
        gt_boxes=[gt],
        family=family,
        sample_id=f"toy-{crop}",
    )
    frame = Frame.of(size, policy.view)
    box = tuple(float(round(v)) for v in frame.to_input(regions[crop]))
    text = "<think>I need to look closer at the disc. " + format_crop_call(box)
    traj.pieces.append(Piece(MODEL, text, tag="reasoning"))
    call = find_crop_calls(text, frame)[-1]
    traj.add_crop(call.box, policy.view)
    traj.events.append(CropEvent(call, len(traj.pieces) - 2, len(traj.pieces) - 1))
    traj.pieces.append(Piece(MODEL, f" The disc is {answer}.</think><answer>{answer}</answer><|im_end|>", tag="answer"))
    return traj.tokenize(policy)


def toy_samples(n: int = 4, view: ViewConfig | None = None) -> list:
    """`n` hand-made Samples on `toy_image()` with one-crop reference rationales (two questions, alternating)."""
    view = view or ViewConfig()  # pass policy.view: boxes are in its model-input frame
    im = toy_image()
    w, h = im.size
    frame = Frame.of(im.size, view)
    specs = [
        ("What colour is the small mark on the red circle?", "yellow", (0.18, 0.22, 0.26, 0.32)),
        ("What colour is the small mark on the blue square?", "green", (0.66, 0.65, 0.74, 0.75)),
    ]
    out = []
    for k in range(n):
        q, a, (x1, y1, x2, y2) = specs[k % 2]
        region = (x1 * w, y1 * h, x2 * w, y2 * h)
        box = tuple(round(v) for v in frame.to_input(region))
        rationale = [
            Piece(MODEL, f"<think>The mark is small, look closer. {format_crop_call(box)}", tag="reasoning"),
            crop_piece(box, im.size),
            Piece(MODEL, f" The mark is {a}.</think><answer>{a}</answer><|im_end|>", tag="answer"),
        ]
        out.append(Sample(im, q, [a], [region], rationale, "read_one", f"toy{k}"))
    return out


def png_header(w: int, h: int) -> bytes:
    """A PNG file that is only a signature and a header claiming w x h pixels, no pixel data (hostile inputs)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
