"""The ablations' environments and targets: where the oracle and random rows crop, the no-crop target."""

from __future__ import annotations

import zlib
from dataclasses import replace
from random import Random

from ..core.regions import Frame
from ..core.trajectory import MODEL, Piece
from ..data.vlir import image_size
from ..data.world import region_input_box


def answer_only(sample):
    """The same sample with its rationale reduced to a direct answer (the no-crop training target)."""
    text = f"<think>I answer from the whole image.</think><answer>{sample.answer}</answer><|im_end|>"
    return replace(sample, rationale=[Piece(MODEL, text, tag="answer")])


def _frame(sample, view):
    return Frame.of(image_size(sample), view)


def oracle_boxes(view):
    """crop_boxes for `rollout`: the k-th crop is the sample's k-th ground-truth region, boxed exactly as
    in the VLIR reference rationales (`world.region_input_box`)."""

    def box(sample, k):
        return region_input_box(sample.regions[k], _frame(sample, view)) if k < len(sample.regions) else None

    return box


def random_boxes(view, seed: int = 0):
    """crop_boxes for `rollout`: a box of the k-th ground-truth region's size at a random place."""

    def box(sample, k):
        frame = _frame(sample, view)
        W, H = frame.input_w, frame.input_h
        if sample.regions:
            x1, y1, x2, y2 = region_input_box(sample.regions[min(k, len(sample.regions) - 1)], frame)
            w, h = x2 - x1, y2 - y1
        else:
            w = h = min(W, H) / 8
        rng = Random(zlib.crc32(f"{seed}/{sample.sample_id}/{k}".encode()))
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        return (x, y, x + w, y + h)

    return box
