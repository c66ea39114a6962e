"""Counterfactual crops and teacher-forced scoring: a crop swapped for a blank, coarse or other-region view (same size,
same tokens, same positions), the token positions of a call, its read and the answer, and their log-probs.

What `explain` (`record.py`) and the tool-necessity ablations (`r3lab.evaluation.necessity`) build on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image

from ..core.answer import answer_span
from ..core.batch import collate
from ..core.regions import Box, box_iou, crop_and_zoom
from ..core.settings import short
from ..core.trajectory import IMAGE, MODEL, Piece, Trajectory
from ..engine.scoring import TokenScorer, token_logprobs
from .contract import SWAPS, Importance, swap_name

if TYPE_CHECKING:
    from ..model.policy import Policy


def counterfactual_trajectory(
    policy: "Policy", traj: Trajectory, event: int = 0, kind: str = "other", image: Image.Image | None = None
) -> Trajectory:
    """A copy of `traj` whose crop of `event` shows `image` (or a "blank" / "coarse" / "other" view: `SWAPS`).

    The replacement has the crop's size, so every token and position stays where it was.
    """
    traj = traj.tokenize(policy)
    events = traj.crop_events()
    if not 0 <= event < len(events) or not events[event].ok:
        raise ValueError(f"event {short(event)} is not an accepted crop (the trajectory has {len(events)} events)")
    ip = events[event].image_piece
    old = traj.pieces[ip]
    if image is None:
        if (kind := swap_name(kind)) not in SWAPS:
            raise ValueError(f"kind={short(kind)}: choose from {SWAPS}")
        gts = [traj.frame.to_input(b) for b in traj.gt_boxes]
        image = _variant_image(kind, traj, old, policy.view, gts + [old.info.box_input])
    new = traj.copy()
    new.events = events
    new.pieces[ip] = Piece(
        IMAGE,
        image=image.convert("RGB").resize(tuple(old.info.input_size)),
        info=replace(old.info),
        ids=old.ids,
        tag=old.tag,
    )
    return new


def piece_starts(traj: Trajectory) -> list[int]:
    starts, n = [], 0
    for p in traj.pieces:
        starts.append(n)
        n += len(p.ids)
    return starts


def _token_ends(policy: "Policy", ids: list[int]) -> list[int]:
    """Character offset where each token of a piece ends (prefix decoding: exact for any tokenizer)."""
    return [len(policy.decode(ids[: k + 1])) for k in range(len(ids))]


def _tokens_in(policy, ids, a: int, b: int) -> list[int]:
    """Indices of the piece's tokens whose characters overlap [a, b)."""
    ends = _token_ends(policy, ids)
    begins = [0] + ends[:-1]
    return [k for k, (s, e) in enumerate(zip(begins, ends)) if s < b and e > a]


def call_queries(policy, traj, ev, starts, window: int) -> list[int]:
    """Token positions of the call and of the `window` tokens before it (within its piece)."""
    p = traj.pieces[ev.piece]
    toks = _tokens_in(policy, p.ids, ev.call.start, ev.call.end)
    if not toks:
        return []
    first = max(0, toks[0] - window)
    return [starts[ev.piece] + k for k in range(first, toks[-1] + 1)]


def scored_trajectory(policy, traj: Trajectory, target: str) -> tuple[Trajectory, str | None]:
    """The trajectory whose answer is scored (target="gt" rewrites the last answer) and that answer."""
    if target not in ("model", "gt"):
        raise ValueError(f"target={short(target)}: use 'model' or 'gt'")
    idx = _answer_piece(traj)
    if idx is None:
        return traj, None
    p = traj.pieces[idx]
    a, b = answer_span(p.text)
    if target == "model":
        return traj, p.text[a:b]
    if not traj.answers:
        raise ValueError("target='gt' needs traj.answers")
    text = p.text[:a] + traj.answers[0] + p.text[b:]
    new = traj.copy()
    new.pieces[idx] = Piece(MODEL, text, ids=policy.encode(text), tag=p.tag)
    return new, traj.answers[0]


def _answer_piece(traj: Trajectory) -> int | None:
    """The last model_text piece holding an answer (`r3lab.core.answer`'s rule), if any."""
    return next(
        (
            i
            for i in range(len(traj.pieces) - 1, -1, -1)
            if traj.pieces[i].kind == MODEL and answer_span(traj.pieces[i].text) is not None
        ),
        None,
    )


def _answer_positions(policy, traj: Trajectory) -> list[int]:
    idx = _answer_piece(traj)
    if idx is None:
        return []
    p = traj.pieces[idx]
    a, b = answer_span(p.text)
    start = piece_starts(traj)[idx]
    return [start + k for k in _tokens_in(policy, p.ids, a, b)]


def answer_logprobs(policy: "Policy", trajectories: Sequence[Trajectory]) -> list[float | None]:
    """Summed log-prob of each trajectory's last <answer> content under teacher forcing (one batch)."""
    pos = [_answer_positions(policy, t) for t in trajectories]
    return [float(lp[ps].sum()) if ps else None for lp, ps in zip(_position_logprobs(policy, trajectories, pos), pos)]


def variant_image(kind: str, traj: Trajectory, piece: Piece, view) -> Image.Image:
    """What a crop `piece` of `traj` shows as a "blank", "coarse" or "other" view, at the crop's size."""
    if (kind := swap_name(kind)) not in SWAPS:
        raise ValueError(f"kind={short(kind)}: choose from {SWAPS}")
    gts = [traj.frame.to_input(b) for b in traj.gt_boxes]
    return _variant_image(kind, traj, piece, view, gts + [piece.info.box_input])


def _variant_image(kind: str, traj: Trajectory, piece: Piece, view, avoid: list[Box]) -> Image.Image:
    size = tuple(piece.info.input_size)
    if kind == "blank":  # no content at all
        return Image.new("RGB", size, (128, 128, 128))
    main = traj.model_images()[0]
    box = piece.info.box_input
    if kind == "coarse":  # what the model already saw of that region, blown up: no new detail
        region = main.crop(tuple(int(round(v)) for v in box))
        return region.resize(size, Image.BILINEAR)
    other = _other_box(box, traj.frame.input_size, avoid)
    return crop_and_zoom(traj.main.image, other, view).image.resize(size, Image.LANCZOS)


def _other_box(box: Box, size, avoid: list[Box]) -> Box:
    """A box of the same size elsewhere, overlapping the chosen box and the ground truth the least."""
    W, H = size
    w, h = min(box[2] - box[0], W), min(box[3] - box[1], H)
    cands = [(x, y, x + w, y + h) for x in (0.0, (W - w) / 2, W - w) for y in (0.0, (H - h) / 2, H - h)]

    def cost(c):
        return max([box_iou(c, box)] + [box_iou(c, g) for g in avoid])

    return min(cands, key=lambda c: (cost(c), -abs(c[0] - box[0]) - abs(c[1] - box[1])))


def read_span(traj: Trajectory, ev) -> tuple[int, int] | None:
    """(piece, end character) of the model's text right after crop event `ev`'s image, up to its next call."""
    k = next((i for i in range(ev.image_piece + 1, len(traj.pieces)) if traj.pieces[i].kind == MODEL), None)
    if k is None:
        return None
    return k, next((e.call.start for e in traj.events if e.piece == k), len(traj.pieces[k].text))


def _read_positions(policy, traj: Trajectory, ev) -> list[int]:
    if (span := read_span(traj, ev)) is None:
        return []
    k, end = span
    return [piece_starts(traj)[k] + t for t in _tokens_in(policy, traj.pieces[k].ids, 0, end)]


def importance(policy, scored: Trajectory, recs, swaps: Sequence[str], score: str) -> None:
    """Fill each accepted crop's `importance` (`contract.Importance`: the log-prob with the crop, with each of `swaps`
    in its place, and the difference), scoring the final answer (`score="answer"`) or the read after the crop
    ("read")."""
    todo = [r for r in recs if r.ok]
    if not todo or not swaps or scored is None:
        return
    events = scored.events or scored.crop_events()
    pos = {
        r.event: (
            _answer_positions(policy, scored) if score == "answer" else _read_positions(policy, scored, events[r.event])
        )
        for r in todo
    }
    todo = [r for r in todo if pos[r.event]]
    if not todo:
        return
    batch, keys = [scored], [None]
    for r in todo:
        for v in swaps:
            batch.append(counterfactual_trajectory(policy, scored, r.event, v))
            keys.append((r.event, v))
    # one batch: the swaps keep every token in place, so one position list per event serves them all
    lps = _position_logprobs(
        policy, batch, [sorted({q for ps in pos.values() for q in ps})] + [pos[k[0]] for k in keys[1:]]
    )
    for key, lp in zip(keys[1:], lps[1:]):
        r = next(x for x in todo if x.event == key[0])
        if r.importance is None:
            r.importance = Importance(score, float(lps[0][pos[r.event]].sum()))
        r.importance.swapped[key[1]] = float(lp[pos[r.event]].sum())
        r.importance.effect[key[1]] = r.importance.logp - r.importance.swapped[key[1]]


def _position_logprobs(policy, trajectories, positions) -> list[torch.Tensor]:
    """Each trajectory's teacher-forced token log-probs (one row each, one batch), read at `positions`."""
    batch = collate(list(trajectories), policy)  # right-padded: a token's position is its place in the trajectory
    mask = torch.zeros_like(batch["loss_mask"])
    for b, ps in enumerate(positions):
        mask[b, ps] = True
    with torch.no_grad():
        lp = token_logprobs(TokenScorer(policy.model), batch, mask=mask)
    return list(lp)
