"""Why did the model crop there? One explanation record per crop decision of a Trajectory.

For each crop call: how much of the main-image attention of the tokens just before (and of) the call
fell inside the chosen box, against its share of the area; the top attended regions; the answer's
log-prob with the crop against the same trajectory whose crop is swapped for a blank view, the coarse
view the model already had, or a crop of the wrong region (counterfactual importance); IoU with the
ground-truth region; and whether a crop was needed at all (the `control` family needs none).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image

from ..core.answer import answer_span
from ..core.batch import collate
from ..core.regions import Box, box_area, box_iou, crop_and_zoom
from ..core.trajectory import IMAGE, MODEL, Piece, Trajectory
from ..engine.scoring import TokenScorer, token_logprobs
from .capture import capture_attention

if TYPE_CHECKING:
    from ..model.policy import Policy

VARIANTS = ("blank", "coarse", "wrong")


@dataclass
class ExplainConfig:
    """How crop decisions are explained."""

    layers: Sequence[int] | str = (-1,)  # text layers whose attention is read (try "all" or the middle layers)
    heads: Sequence[int] | None = None  # heads kept; None = all, averaged
    sink: str = "renorm"  # attention-sink handling, see AttentionMaps ("renorm" | "keep" | "image")
    window: int = 8  # tokens before the crop call that count as "just before the call" (the call's own tokens too)
    top_k: int = 3  # top attended cells reported per call
    variants: tuple = VARIANTS  # counterfactual views that replace the crop: "blank" | "coarse" | "wrong"
    target: str = "model"  # answer scored: "model" (what the trajectory answered) or "gt" (traj.answers[0])
    # what the importance scores: "answer" (the final <answer>) or "read" (the model's text right after the crop,
    # up to its next call: what it read there). A model whose answer copies its rationale's read shows the crop's
    # effect in the read, not in the answer (research/FINDINGS.md, reading)
    score: str = "answer"


@dataclass
class CropExplanation:
    """One crop decision, explained. Boxes are in the main image's model-input frame unless named _orig."""

    event: int  # index into traj.events
    piece: int  # model_text piece holding the call
    ok: bool  # the environment accepted the call (a crop was inserted)
    box: Box | None  # the box as called, read into the input frame (whatever frame the model wrote it in)
    box_orig: tuple | None  # the original-pixel box that was cut
    area_frac: float | None  # box area / main image area
    mass_in_box: float | None  # share of the main image's attention inside the box (tokens before the call)
    mass_outside: float | None  # 1 - mass_in_box
    concentration: float | None  # mass_in_box / area_frac: > 1 means the box got more than its share
    top_regions: list = field(default_factory=list)  # [{"box", "mass", "cell"}] most attended cells
    gt_iou: float | None = None  # best IoU of the box with a ground-truth region (input frame)
    gt_index: int | None = None  # which ground-truth region that is
    gt_mass: float | None = None  # share of attention inside that ground-truth region
    top_in_gt: bool | None = None  # the most attended cell overlaps a ground-truth region
    needed: bool | None = None  # False for the control family (answerable without cropping)
    logp: float | None = None  # log-prob of the scored text (ExplainConfig.score) with this crop
    logp_variants: dict = field(default_factory=dict)  # variant -> log-prob with the crop replaced
    importance: dict = field(default_factory=dict)  # variant -> logp - logp_variant (> 0: the crop helped)
    answer: str | None = None  # the trajectory's scored answer text
    read: str | None = None  # the model's text right after the crop, up to its next call (score="read" scores it)
    coords: str = "absolute"  # the frame the model wrote the box in: "absolute" pixels | "relative" 0-1000
    box_written: Box | None = None  # the box's numbers in that frame (what the model's text says)

    def to_dict(self) -> dict:
        return asdict(self)


def explain_crops(policy: "Policy", trajectory: Trajectory, config: ExplainConfig | None = None,
                  **overrides) -> list[CropExplanation]:
    """One `CropExplanation` per crop event of `trajectory` (refused calls get attention only)."""
    cfg = replace(config or ExplainConfig(), **overrides)
    bad = [v for v in cfg.variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"unknown counterfactual variants {bad}; choose from {VARIANTS}")
    if cfg.score not in ("answer", "read"):
        raise ValueError(f"score={cfg.score!r}: use 'answer' (the final answer) or 'read' (the text after each crop)")
    traj = trajectory.tokenize(policy).copy()
    traj.events = traj.crop_events()
    if not traj.events:
        return []
    starts = _piece_starts(traj)
    queries = {k: _call_queries(policy, traj, e, starts, cfg.window) for k, e in enumerate(traj.events)}
    allq = sorted({q for qs in queries.values() for q in qs})
    with capture_attention(policy, layers=cfg.layers, heads=cfg.heads, queries=allq or "last") as cap:
        cap.forward(traj)
    maps = cap.maps
    frame = traj.frame
    gts = [frame.to_input(b) for b in traj.gt_boxes]
    agg = dict(sink=cfg.sink)
    scored, answer = _scored_trajectory(policy, traj, cfg.target)
    out = []
    for k, ev in enumerate(traj.events):
        box = ev.call.box if ev.call.box is not None else None
        if box is not None:
            W, H = frame.input_size
            box = (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))
        rec = CropExplanation(event=k, piece=ev.piece, ok=ev.ok, box=box, box_orig=None, area_frac=None,
                              mass_in_box=None, mass_outside=None, concentration=None, answer=answer,
                              needed=(traj.family != "control") if traj.family else None,
                              coords=traj.calls.coords, box_written=None if box is None else traj.calls.written(box, frame))
        if ev.ok:
            rec.box_orig = tuple(traj.pieces[ev.image_piece].info.box_orig)
            if (span := _read_span(traj, ev)) is not None:
                rec.read = traj.pieces[span[0]].text[:span[1]]
        if box is not None and queries[k]:
            q = queries[k]
            rec.area_frac = box_area(box) / (frame.input_w * frame.input_h)
            rec.mass_in_box = maps.mass(box, image=0, queries=q, **agg)
            rec.mass_outside = 1.0 - rec.mass_in_box
            rec.concentration = rec.mass_in_box / rec.area_frac if rec.area_frac > 0 else None
            rec.top_regions = maps.top_regions(0, k=cfg.top_k, queries=q, **agg)
            if gts:
                ious = [box_iou(box, g) for g in gts]
                rec.gt_index = max(range(len(gts)), key=ious.__getitem__)
                rec.gt_iou = ious[rec.gt_index]
                rec.gt_mass = maps.mass(gts[rec.gt_index], image=0, queries=q, **agg)
                top = rec.top_regions[0]["box"] if rec.top_regions else None
                rec.top_in_gt = top is not None and any(box_iou(top, g) > 0 for g in gts)
        out.append(rec)
    _counterfactuals(policy, scored, out, cfg)
    return out


def disagreements(explanations: Sequence[CropExplanation], iou: float = 0.3, concentration: float = 1.0) -> list[dict]:
    """Crop decisions whose explanation disagrees with the ground truth, with the reasons."""
    out = []
    for e in explanations:
        why = []
        if e.needed is False:
            why.append("cropped although the question needs no crop (control)")
        if e.gt_iou is not None and e.gt_iou < iou:
            why.append(f"box IoU with the ground truth {e.gt_iou:.2f} < {iou}")
        if e.top_in_gt is False:
            why.append("the most attended cell is outside every ground-truth region")
        if e.concentration is not None and e.concentration < concentration:
            why.append(f"the box got less attention than its area ({e.concentration:.2f}x)")
        for v, imp in e.importance.items():
            if e.needed and imp is not None and imp <= 0:
                why.append(f"the scored text is no less likely with the {v} view (importance {imp:+.2f})")
        if why:
            out.append({"event": e.event, "reasons": why})
    return out


def explanation_table(explained: dict[str, Sequence[CropExplanation]]) -> str:
    """One line per crop decision (sample id -> its explanations): IoU with the truth, attention in the box
    and against its area, whether the top cell is in the truth, importance against each view, needed."""
    lines = [f"{'sample':22s} crop  IoU   in-box  x-area  top-in-gt  imp(blank) imp(coarse) imp(wrong) needed"]
    for sid, exps in explained.items():
        for e in exps:
            imp = {k: (f"{v:+.3f}" if v is not None else "  -  ") for k, v in e.importance.items()}
            lines.append(f"{sid:22s} {e.event + 1:4d}  {e.gt_iou or 0:.2f}  {e.mass_in_box or 0:.3f}  "
                         f"{e.concentration or 0:5.2f}  {str(e.top_in_gt):9s}  {imp.get('blank', '-'):>9s} "
                         f"{imp.get('coarse', '-'):>10s} {imp.get('wrong', '-'):>10s} {e.needed}")
    return "\n".join(lines)


def counterfactual_trajectory(policy: "Policy", traj: Trajectory, event: int = 0, kind: str = "wrong",
                              image: Image.Image | None = None) -> Trajectory:
    """A copy of `traj` whose crop of `event` shows `image` (or a "blank" / "coarse" / "wrong" view).

    The replacement has the crop's size, so every token and position stays where it was.
    """
    traj = traj.tokenize(policy)
    events = traj.crop_events()
    if not 0 <= event < len(events) or not events[event].ok:
        raise ValueError(f"event {event} is not an accepted crop (the trajectory has {len(events)} events)")
    ip = events[event].image_piece
    old = traj.pieces[ip]
    if image is None:
        if kind not in VARIANTS:
            raise ValueError(f"kind={kind!r}: choose from {VARIANTS}")
        gts = [traj.frame.to_input(b) for b in traj.gt_boxes]
        image = _variant_image(kind, traj, old, policy.view, gts + [old.info.box_input])
    new = traj.copy()
    new.events = events
    new.pieces[ip] = Piece(IMAGE, image=image.convert("RGB").resize(tuple(old.info.input_size)),
                           info=replace(old.info), ids=old.ids, tag=old.tag)
    return new


# -- internals ------------------------------------------------------------------------------------
def _piece_starts(traj: Trajectory) -> list[int]:
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


def _call_queries(policy, traj, ev, starts, window: int) -> list[int]:
    """Token positions of the call and of the `window` tokens before it (within its piece)."""
    p = traj.pieces[ev.piece]
    toks = _tokens_in(policy, p.ids, ev.call.start, ev.call.end)
    if not toks:
        return []
    first = max(0, toks[0] - window)
    return [starts[ev.piece] + k for k in range(first, toks[-1] + 1)]


def _scored_trajectory(policy, traj: Trajectory, target: str) -> tuple[Trajectory, str | None]:
    """The trajectory whose answer is scored (target="gt" rewrites the last answer) and that answer."""
    if target not in ("model", "gt"):
        raise ValueError(f"target={target!r}: use 'model' or 'gt'")
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
    return next((i for i in range(len(traj.pieces) - 1, -1, -1)
                 if traj.pieces[i].kind == MODEL and answer_span(traj.pieces[i].text) is not None), None)


def _answer_positions(policy, traj: Trajectory) -> list[int]:
    idx = _answer_piece(traj)
    if idx is None:
        return []
    p = traj.pieces[idx]
    a, b = answer_span(p.text)
    start = _piece_starts(traj)[idx]
    return [start + k for k in _tokens_in(policy, p.ids, a, b)]


def answer_logprobs(policy: "Policy", trajectories: Sequence[Trajectory]) -> list[float | None]:
    """Summed log-prob of each trajectory's last <answer> content under teacher forcing (one batch)."""
    pos = [_answer_positions(policy, t) for t in trajectories]
    return [float(lp[ps].sum()) if ps else None for lp, ps in zip(_position_logprobs(policy, trajectories, pos), pos)]


def variant_image(kind: str, traj: Trajectory, piece: Piece, view) -> Image.Image:
    """What a crop `piece` of `traj` shows as a "blank", "coarse" or "wrong" view, at the crop's size."""
    if kind not in VARIANTS:
        raise ValueError(f"kind={kind!r}: choose from {VARIANTS}")
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
    wrong = _wrong_box(box, traj.frame.input_size, avoid)
    return crop_and_zoom(traj.main.image, wrong, view).image.resize(size, Image.LANCZOS)


def _wrong_box(box: Box, size, avoid: list[Box]) -> Box:
    """A box of the same size elsewhere, overlapping the chosen box and the ground truth the least."""
    W, H = size
    w, h = min(box[2] - box[0], W), min(box[3] - box[1], H)
    cands = [(x, y, x + w, y + h) for x in (0.0, (W - w) / 2, W - w) for y in (0.0, (H - h) / 2, H - h)]
    def cost(c):
        return max([box_iou(c, box)] + [box_iou(c, g) for g in avoid])
    return min(cands, key=lambda c: (cost(c), -abs(c[0] - box[0]) - abs(c[1] - box[1])))


def _read_span(traj: Trajectory, ev) -> tuple[int, int] | None:
    """(piece, end character) of the model's text right after crop event `ev`'s image, up to its next call."""
    k = next((i for i in range(ev.image_piece + 1, len(traj.pieces)) if traj.pieces[i].kind == MODEL), None)
    if k is None:
        return None
    return k, next((e.call.start for e in traj.events if e.piece == k), len(traj.pieces[k].text))


def _read_positions(policy, traj: Trajectory, ev) -> list[int]:
    if (span := _read_span(traj, ev)) is None:
        return []
    k, end = span
    return [_piece_starts(traj)[k] + t for t in _tokens_in(policy, traj.pieces[k].ids, 0, end)]


def _counterfactuals(policy, scored, recs, cfg):
    todo = [r for r in recs if r.ok]
    if not todo or not cfg.variants or scored is None:
        return
    events = scored.events or scored.crop_events()
    pos = {r.event: (_answer_positions(policy, scored) if cfg.score == "answer"
                     else _read_positions(policy, scored, events[r.event])) for r in todo}
    todo = [r for r in todo if pos[r.event]]
    if not todo:
        return
    batch, keys = [scored], [None]
    for r in todo:
        for v in cfg.variants:
            batch.append(counterfactual_trajectory(policy, scored, r.event, v))
            keys.append((r.event, v))
    # one batch: the variants keep every token in place, so one position list per event serves them all
    lps = _position_logprobs(policy, batch, [sorted({q for ps in pos.values() for q in ps})]
                             + [pos[k[0]] for k in keys[1:]])
    for key, lp in zip(keys[1:], lps[1:]):
        r = next(x for x in todo if x.event == key[0])
        r.logp = float(lps[0][pos[r.event]].sum())
        r.logp_variants[key[1]] = float(lp[pos[r.event]].sum())
        r.importance[key[1]] = r.logp - r.logp_variants[key[1]]


def _position_logprobs(policy, trajectories, positions) -> list[torch.Tensor]:
    """Each trajectory's teacher-forced token log-probs (one row each, one batch), read at `positions`."""
    batch = collate(list(trajectories), policy)  # right-padded: a token's position is its place in the trajectory
    mask = torch.zeros_like(batch["loss_mask"])
    for b, ps in enumerate(positions):
        mask[b, ps] = True
    with torch.no_grad():
        lp = token_logprobs(TokenScorer(policy.model), batch, mask=mask)
    return list(lp)
