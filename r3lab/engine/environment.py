"""The environment a row writes in: crop calls honoured, refused with a note, or ending the row.

`Episode` is one trajectory being written in the crop environment, a state machine both engine modes share: it takes the
model's next token, closes its segment exactly at the token that closes a crop call, cuts and
zooms a valid crop (or writes a short env note for a refused one) and enforces the budgets. It
returns what the engine must append to the KV cache next (`Feed`), or None when it is finished.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from ..core.crop_calls import CallStyle, Verdict, closed_call_since, find_crop_calls, format_crop_call, parse_crop_call
from ..core.prompt import TOOL_TURN
from ..core.regions import Box
from ..core.settings import short
from ..core.trajectory import ENV, MODEL, CropEvent, Piece, Trajectory
from .cache import Feed
from .config import RolloutConfig

if TYPE_CHECKING:
    from PIL import Image

    from ..data.sample import Sample
    from ..model.policy import Policy

Script = str | Sequence[int] | Sequence[str] | None
BoxFn = Callable[["Sample", int], "Box | None"]
# (sample, k, crop piece, trajectory) -> the pixels the k-th crop shows instead (None: the crop itself)
ImageFn = Callable[["Sample", int, Piece, Trajectory], "Image.Image | None"]
# (sample, k, crop piece, trajectory) -> token ids the k-th accepted call is answered with instead of the crop's
# image (None: the crop itself); they are text to the model: no pixels, positions as text
IdsFn = Callable[["Sample", int, Piece, Trajectory], "Sequence[int] | None"]


def crop_script(
    frame, n_crops: int, segment: str = " I look closer.", answer: str = "red", style: CallStyle | None = None
) -> list[str]:
    """Every token of an n-crop trajectory as script pieces (benchmarks, lessons, tests).

    Each segment is `segment` + one crop call (distinct boxes, each a quarter of the model-input
    view, written in `style`), then `segment`, the answer and `<|im_end|>`: the engine does exactly
    this work in any mode.
    """
    W, H = frame.input_w, frame.input_h
    parts = ["<think>"]
    for i in range(n_crops):
        x = W * 0.4 * i / max(1, n_crops - 1) if n_crops > 1 else 0
        box = (int(x), int(H * 0.1), int(x + W * 0.5), int(H * 0.6))
        parts += [segment, " " + format_crop_call(box, style, frame)]
    return parts + [segment, f"</think><answer>{answer}</answer><|im_end|>"]


def note_text(message: str, style: CallStyle | None = None) -> str:
    """The env_text the environment appends after a refused crop call (tool grammar: as a tool response)."""
    if CallStyle.of(style).grammar == "tool":
        return f"{TOOL_TURN[0]}crop refused: {message}{TOOL_TURN[1]}"
    return f"\n(crop refused: {message})\n"


class Episode:
    """One trajectory being generated: its finished pieces, the open segment and its budgets."""

    def __init__(
        self, policy: "Policy", traj: Trajectory, cfg: RolloutConfig, script: list[int], index: int, braces: list[bool]
    ):
        self.policy, self.traj, self.cfg, self.index, self.braces = policy, traj, cfg, index, braces
        self.script = deque(script)
        self.seg: list[int] = []
        self.lps: list[float] = []
        self.n_new = 0
        self.stop: str | None = None
        # see rollout(crop_boxes=..., crop_images=..., crop_ids=...)
        self.box_for: Callable[[int], Box | None] | None = None
        self.image_for: Callable[[int, Piece, Trajectory], "Image.Image | None"] | None = None
        self.ids_for: Callable[[int, Piece, Trajectory], "Sequence[int] | None"] | None = None

    def forced(self) -> int | None:
        return self.script[0] if self.script else None

    def push(self, tok: int, lp: float) -> Feed | None:
        """Take the next model token; return what to append to the cache, or None when finished."""
        if self.script:
            self.script.popleft()
        cfg = self.cfg
        self.seg.append(tok)
        self.lps.append(lp)
        self.n_new += 1
        if tok == self.policy.eos_id:
            return self._finish("eos")
        if self.braces[tok]:
            text = self.policy.decode(self.seg)
            since = len(self.policy.decode(self.seg[:-1]))
            call = closed_call_since(text, since, self.traj.frame, self.policy.view.max_aspect, self.traj.calls)
            if call is not None:
                return self._on_call(call, tok)
        if self.n_new >= cfg.max_new_tokens:
            return self._finish("max_new_tokens")
        if len(self.seg) >= cfg.max_segment_tokens:
            return self._finish("max_segment_tokens")
        return Feed([tok])

    def _on_call(self, call, tok: int) -> Feed | None:
        cfg, traj, policy = self.cfg, self.traj, self.policy
        k = self._close_segment()
        if self.n_new >= cfg.max_new_tokens:  # the budget ends with the call: nothing left to read a crop
            traj.events.append(CropEvent(call, k))
            return self._finish("max_new_tokens")
        stop, style = None, traj.calls
        if call.ok and self.box_for is not None and self.n_crops < cfg.max_crops:
            call = self._environment_box(call)
        if not call.ok:
            note = note_text(call.message, style)
        elif self.n_crops >= cfg.max_crops:
            note = note_text(f"at most {cfg.max_crops} crops per answer", style)
        elif len(traj.image_pieces) >= cfg.max_images:
            note, stop = note_text(f"at most {cfg.max_images} images per answer", style), "max_images"
        else:
            turn = style.grammar == "tool"  # the crop comes back in a tool-response turn of the chat template
            before = Piece(ENV, TOOL_TURN[0], ids=policy.encode(TOOL_TURN[0]), tag="tool") if turn else None
            if before:
                traj.pieces.append(before)
            n = self.n_crops
            piece = traj.add_crop(call.box, policy.view)
            alt = None if self.ids_for is None else self.ids_for(n, piece, traj)
            if alt is not None:  # answered without pixels (audit ablations): an env_text piece in the crop's place
                ids, grids, pv = list(alt), [], None
                traj.pieces[-1] = Piece(ENV, policy.decode(ids), ids=ids, tag="crop")
            else:
                if self.image_for is not None and (im := self.image_for(n, piece, traj)) is not None:
                    piece.image = im.convert("RGB").resize(piece.image.size)  # same size: same tokens
                pv, grid = policy.encode_images([piece.image])
                piece.info.grid_thw = tuple(int(v) for v in grid[0])
                piece.ids = policy.image_ids(piece.info.grid_thw)
                ids, grids = piece.ids, [piece.info.grid_thw]
            traj.events.append(CropEvent(call, k, image_piece=len(traj.pieces) - 1))
            if turn:
                after = Piece(ENV, TOOL_TURN[1], ids=policy.encode(TOOL_TURN[1]), tag="tool")
                traj.pieces.append(after)
                ids = before.ids + ids + after.ids
            return Feed([tok] + ids, grids, pv)
        ids = policy.encode(note)
        traj.pieces.append(Piece(ENV, note, ids=ids, tag="note"))
        traj.events.append(CropEvent(call, k, note=note))
        if stop:
            return self._finish(stop)
        return Feed([tok] + ids)

    def _environment_box(self, call):
        """The call with the box `crop_boxes` chose, judged like any call; a bad box is the caller's bug."""
        box = self.box_for(self.n_crops)
        if box is None:
            return call
        try:
            judged = parse_crop_call(format_crop_call(box), self.traj.frame, self.policy.view.max_aspect)
            problem = "" if judged.ok else judged.message
        except (TypeError, ValueError) as e:  # not a sequence of numbers
            problem = str(e)
        if problem:
            raise ValueError(
                f"crop_boxes returned {short(box)} for crop {self.n_crops} of sample "
                f"{short(self.traj.meta.get('sample_id'))}: {problem}; return a box (x1, y1, x2, y2) "
                f"inside the {self.traj.frame.input_w}x{self.traj.frame.input_h} model-input frame, "
                "or None to keep the model's own"
            )
        return replace(judged, start=call.start, end=call.end, raw=call.raw)

    @property
    def n_crops(self) -> int:
        """Accepted crop calls so far (a call answered without pixels counts against max_crops too)."""
        return sum(e.ok for e in self.traj.events)

    def _close_segment(self) -> int | None:
        """Move the open segment into a model_text piece; returns its index."""
        if not self.seg:
            return None
        text = self.policy.decode(self.seg)
        tag = "answer" if "<answer>" in text else "reasoning"
        self.traj.pieces.append(Piece(MODEL, text, ids=self.seg, logprobs=self.lps, tag=tag))
        self.seg, self.lps = [], []
        return len(self.traj.pieces) - 1

    def _finish(self, stop: str) -> None:
        k = self._close_segment()
        if k is not None:  # a crop call still open when the trajectory ends
            calls = find_crop_calls(
                self.traj.pieces[k].text, self.traj.frame, self.policy.view.max_aspect, self.traj.calls
            )
            if calls and calls[-1].verdict is Verdict.UNTERMINATED:
                self.traj.events.append(CropEvent(calls[-1], k))
        self.stop = stop
        self.traj.meta.update(stop=stop, n_crops=self.n_crops, n_new_tokens=self.n_new)
        return None
