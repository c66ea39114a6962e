"""A trajectory as display steps: the one place every view (matplotlib, plotly, widgets, HTML) reads it from."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.trajectory import ENV, IMAGE, MODEL, Trajectory

COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"]


@dataclass
class Step:
    """One piece of a trajectory as shown to a person."""

    index: int  # step number (0 = the question)
    piece: int  # index into traj.pieces
    kind: str  # model_text | env_text | image
    text: str  # the piece's text ("" for images)
    crop: int | None = None  # crop number (1-based) made or shown at this step
    box: tuple | None = None  # that crop's box in the main image's ORIGINAL pixels (x1, y1, x2, y2)
    ok: bool = True  # False for a refused crop call
    note: str = ""  # the environment's note for a refused call


def crop_boxes(traj: Trajectory) -> list[dict]:
    """Crop decisions in order: {"n", "event", "box" (original pixels, half-open), "ok", "piece", "image_piece"}."""
    f = traj.frame
    sx, sy = f.orig_w / f.input_w, f.orig_h / f.input_h
    out = []
    for k, ev in enumerate(traj.crop_events()):
        if ev.ok:
            if traj.pieces[ev.image_piece].info.box_orig is None:
                raise ValueError(
                    "the trajectory's crops are not cut yet (a reference trajectory cuts them "
                    "lazily): call traj.tokenize(policy) first"
                )
            x1, y1, x2, y2 = traj.pieces[ev.image_piece].info.box_orig
            box = (x1, y1, x2 + 1, y2 + 1)
        elif ev.call.box is not None:
            b = ev.call.box
            box = (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)
        else:
            box = None
        out.append(
            {
                "n": k + 1,
                "event": k,
                "box": box,
                "ok": ev.ok,
                "piece": ev.piece,
                "image_piece": ev.image_piece,
                "note": ev.note,
            }
        )
    return out


def trajectory_steps(traj: Trajectory) -> list[Step]:
    """The question, then every piece after the prompt, with crop numbers and boxes attached."""
    crops = crop_boxes(traj)
    by_piece = {c["piece"]: c for c in crops}
    by_image = {c["image_piece"]: c for c in crops if c["image_piece"] is not None}
    first = next((i for i, p in enumerate(traj.pieces) if p.kind == MODEL), len(traj.pieces))
    steps = [Step(0, max(0, first - 1), ENV, traj.question or "")]
    for i in range(first, len(traj.pieces)):
        p = traj.pieces[i]
        c = by_image.get(i) if p.kind == IMAGE else by_piece.get(i)
        steps.append(
            Step(
                len(steps),
                i,
                p.kind,
                p.text if p.kind != IMAGE else "",
                c["n"] if c else None,
                c["box"] if c else None,
                c["ok"] if c else True,
                c["note"] if c else "",
            )
        )
    return steps
