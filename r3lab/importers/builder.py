"""`TraceBuilder`: one foreign episode laid out exactly like an r3lab one (`env_text` prompt head, the main image, the
rest of the prompt, then `model_text` pieces with a `CropEvent` and a crop `image` piece after every crop the system
executed, `env_text` for what its environment wrote), and what every importer shares: images opened and held to the
run's image root, accepted answers, records read with numbered errors, tool calls parsed."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from ..core.answer import extract_answer
from ..core.crop_calls import CropCall, Verdict
from ..core.env import progress_disabled
from ..core.files import inside
from ..core.prompt import MAX_TEXT_CHARS, PromptConfig
from ..core.records import ImportReport, bad_record, read_records
from ..core.regions import Frame, ViewConfig, clip_box
from ..core.trajectory import ENV, IMAGE, MODEL, CropEvent, ImageInfo, Piece, Trajectory

MAX_EPISODE_CHARS = 1 << 20  # text of one imported episode: a quarter of a million tokens of reasoning
MAX_PIECES = 4096  # pieces of one imported episode (texts, crops and notes)
TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)  # a tool call as DeepEyes and verl write it


@dataclass
class TraceBuilder:
    """Builds one foreign episode as a Trajectory: prompt, main image, then model text, crops and env text."""

    image: Image.Image | None  # the main image (None: only its size is known, `size`)
    view: ViewConfig  # the frame the trajectory's model-input boxes are in
    size: tuple[int, int] | None = None  # (w, h) of the original, when the image is not loaded
    traj: Trajectory = field(init=False)

    def __post_init__(self):
        if self.image is not None:
            self.image = self.image.convert("RGB")
            self.size = self.image.size
        if self.size is None:
            raise ValueError("TraceBuilder needs the main image or its size")
        self.frame = Frame.of(self.size, self.view)

    def start(self, head: str, tail: str, **traj_kw) -> "TraceBuilder":
        """The prompt: `head` text, the main image, `tail` text (everything up to the assistant's first token)."""
        main = Piece(IMAGE, image=self.image, info=ImageInfo("main", self.frame.input_size, self.size), tag="main")
        self.traj = Trajectory([Piece(ENV, head, tag="prompt"), main, Piece(ENV, tail, tag="prompt")], **traj_kw)
        return self

    def model(self, text: str, ids: list[int] | None = None, logprobs: list[float] | None = None) -> int:
        tag = "answer" if "<answer>" in text else "reasoning"
        self.traj.pieces.append(Piece(MODEL, text, ids, logprobs, tag=tag))
        return len(self.traj.pieces) - 1

    def env(self, text: str, tag: str = "note", ids: list[int] | None = None) -> None:
        if text:
            self.traj.pieces.append(Piece(ENV, text, ids, tag=tag))

    def crop(
        self,
        span: tuple[int, int],
        box_orig: tuple,
        crop: Image.Image | None = None,
        before: str = "",
        box_input: tuple | None = None,
    ) -> bool:
        """An executed crop of the last model piece's text `span`: `box_orig` is the half-open original-pixel
        box the system cut; `crop` its pixels as the system showed them (None: cut later by `tokenize`);
        `before` the text the system's environment wrote before the crop; `box_input` the box as written,
        when it is already in this trajectory's frame. False (and a refused call) for a box that holds no
        pixel of the image."""
        k = self._last_model()
        text = self.traj.pieces[k].text
        W, H = self.size
        x1, y1, x2, y2 = clip_box(box_orig, W, H)
        if x2 - x1 < 1 or y2 - y1 < 1:
            self.refused(span, f"the box {list(box_orig)} holds no pixel of the {W}x{H} image")
            return False
        box_in = box_input or self.frame.to_input((x1, y1, x2, y2))
        call = CropCall(span[0], span[1], text[span[0] : span[1]], Verdict.OK, box_in, False, "ok")
        info = ImageInfo("crop", (0, 0), self.size, box_in, (int(x1), int(y1), int(x2) - 1, int(y2) - 1))
        self.env(before, tag="tool")
        self.traj.pieces.append(Piece(IMAGE, image=crop, info=info, tag="crop"))
        self.traj.events.append(CropEvent(call, k, len(self.traj.pieces) - 1))
        return True

    def refused(
        self,
        span: tuple[int, int],
        message: str,
        note: str = "",
        box: tuple | None = None,
        verdict: Verdict = Verdict.NOT_JSON,
    ) -> None:
        """A crop call the system did not execute (its note, if it wrote one, follows as env text); `box`, when
        the call held one, in this trajectory's model-input frame."""
        k = self._last_model()
        text = self.traj.pieces[k].text
        call = CropCall(span[0], span[1], text[span[0] : span[1]], verdict, box, False, message)
        self.env(note)
        self.traj.events.append(CropEvent(call, k, note=note))

    def build(self) -> Trajectory:
        """The trajectory, its sizes held to what one episode can be (a broken or crafted record, a 60 MB question,
        would otherwise be copied into questions.jsonl and report.html whole)."""
        question = self.traj.question or ""
        if len(question) > MAX_TEXT_CHARS:
            raise ValueError(
                f"its question is {len(question):,} characters, more than the {MAX_TEXT_CHARS:,} a "
                "question may have: is the file broken?"
            )
        pieces = self.traj.pieces
        if len(pieces) > MAX_PIECES or sum(len(p.text or "") for p in pieces) > MAX_EPISODE_CHARS:
            raise ValueError(
                f"it holds {len(pieces):,} pieces and {sum(len(p.text or '') for p in pieces):,} "
                f"characters, more than the {MAX_PIECES:,} pieces and {MAX_EPISODE_CHARS:,} characters "
                "one episode may have: is the file broken?"
            )
        return self.traj

    def _last_model(self) -> int:
        """The model piece a crop call belongs to: the last one (a tool may answer several calls of one turn)."""
        ks = [i for i, p in enumerate(self.traj.pieces) if p.kind == MODEL]
        if not ks:
            raise ValueError("a crop call needs the model text that wrote it")
        return ks[-1]


def open_image(path: str | os.PathLike, load: bool = True) -> tuple[Image.Image | None, tuple[int, int]]:
    """(RGB image or None, (w, h)); `load=False` reads only the header (metrics need no pixels)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist (pass image_root= the folder the run's paths start from)")
    try:
        with Image.open(path) as im:
            return (im.convert("RGB") if load else None), im.size
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"image {path} is not a readable image ({e})") from None


def default_head_tail(question: str, prompt: PromptConfig | None = None) -> tuple[str, str]:
    """The Qwen chat layout around the main image (default system turn), with `prompt`'s instruction."""
    return (prompt or PromptConfig()).head_tail(question)


def answers_of(rec: dict) -> list[str]:
    """Accepted answers: the letter and the text where both are given ("<answer>X</answer>" and "a/b" read too)."""
    out = []
    for key in ("answer_choice", "answer", "ground_truth", "solution", "label"):
        v = rec.get(key)
        if isinstance(v, str) and v.strip():
            v = extract_answer(v) or v  # "<answer>X</answer>" or X
            out += [x.strip() for x in v.split("/") if x.strip() and x.strip() not in out]
    return out


def import_records(path, errors, one):
    """`one(record, number)` over every record of a JSON list or JSONL file: (results, ImportReport)."""
    path = Path(path)
    out, rep = [], ImportReport(str(path))
    for n, rec in tqdm(
        read_records(path, rep, errors),
        desc=f"import {path.name}",
        unit="rec",
        leave=False,
        disable=progress_disabled(),
    ):
        try:
            out.append(one(rec, n))
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            bad_record(rep, errors, path, n, e)
    rep.kept = len(out)
    return out, rep


def path_under(root: Path, rel: str) -> Path:
    """An image path a run's record names (relative to `root`, or absolute), held to the run's image root, links
    included: the one path rule of datasets and `data import` (`inside`), so a run file from elsewhere cannot put
    any image the user can read into a report meant for sharing."""
    return inside(
        root, rel, "image", "the image root", "pass --image-root naming the folder that holds the run's images"
    )


def loads_call(s: str):
    """A tool call's JSON, or the Python literal DeepEyes and verl also accept."""
    try:
        return json.loads(s)
    except ValueError:
        return ast.literal_eval(s)  # DeepEyes reads the call with Python's eval; literals only here
