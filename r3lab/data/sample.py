"""The Sample: one question about one image, with its answers, regions and reference rationale."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PIL import Image

from ..core.prompt import IM_END, MAX_TEXT_CHARS, TOOL_TURN, check_plain_text
from ..core.regions import Box, ViewConfig, check_box
from ..core.settings import short
from ..core.trajectory import ENV, IMAGE, MODEL, Piece, Trajectory, crop_piece

if TYPE_CHECKING:
    from ..core.prompt import PromptConfig


# what PIL raises for a file that is not an image it can read: text named .png, a truncated file, a
# malformed chunk (SyntaxError in some plugins), a header claiming more than twice Image.MAX_IMAGE_PIXELS
_UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


def read_image(path: str | Path, size_only: bool = False):
    """The image file's RGB pixels (or only its (w, h), read from the header); ValueError naming the file
    when it is not a readable image."""
    try:
        with Image.open(path) as im:
            return tuple(im.size) if size_only else im.convert("RGB")
    except _UNREADABLE as e:
        raise ValueError(
            f"image file {path} is not a readable image ({type(e).__name__}: {e}); replace the file or drop its sample"
        ) from None


def check_image(path: str | Path) -> tuple[int, int]:
    """The image file's (w, h), once the whole file has been read: ValueError naming the file when it is not a
    readable image or is cut off or damaged anywhere, as `read_image` would find at its first use. A PNG's every
    chunk is checked against its CRC (0.1 ms for a 672x672 image, a full decode takes 6); a JPEG is decoded at
    1/8 scale (every byte is still read); anything else is decoded."""
    try:
        with Image.open(path) as im:
            size = tuple(im.size)
            if im.format == "PNG":
                im.verify()
            else:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
                im.load()
        return size
    except _UNREADABLE as e:
        raise ValueError(
            f"image file {path} is not a readable image ({type(e).__name__}: {e}); replace the file or drop its sample"
        ) from None


MAX_ANSWERS = 1_000  # accepted answers of one question (VQA lists 10); more is a broken file


@dataclass
class Sample:
    image: Image.Image | str | Callable[[], Image.Image]  # the original image, its path, or a renderer (lazy)
    question: str
    answers: list[str]  # accepted answers; the first is canonical
    regions: list[Box] = field(default_factory=list)  # ground-truth regions, original pixels, in crop order
    rationale: list[Piece] | None = None  # reference pieces after the prompt (model_text and crop images)
    family: str = ""  # task family, e.g. read_one / compare_two / count / control
    sample_id: str = ""
    provenance: dict = field(default_factory=dict)  # generator, seed, source dataset, line number ...
    details: list[Box] = field(default_factory=list)  # the fine detail each region must show, original pixels

    def __post_init__(self):
        self.check_fields()
        self.check_text()

    def check_fields(self, size: tuple[int, int] | None = None, need_answer: bool = False) -> None:
        """ValueError naming the sample when a field has the wrong type: the question a string, the answers a list
        of strings (a bare "yes" would become ['y', 'e', 's']), non-empty when `need_answer` (a sample read to train
        or score on; only probes such as "Where is ...?" have none), every region and detail a box (`check_box`),
        inside the w x h image `size` when it is given (or the image is in memory)."""
        name = f"sample {short(self.sample_id or '?')}"
        if not isinstance(self.question, str):
            raise ValueError(f"{name}: question must be a string, got {type(self.question).__name__}")
        if (
            not isinstance(self.answers, (list, tuple))
            or not all(isinstance(a, str) for a in self.answers)
            or need_answer
            and not any(a.strip() for a in self.answers)
        ):
            raise ValueError(
                f"{name}: answers must be a {'non-empty ' if need_answer else ''}list of strings "
                f'(e.g. ["yes"]), got {short(self.answers)}'
            )
        self.answers = list(self.answers)
        if len(self.answers) > MAX_ANSWERS or any(len(a) > MAX_TEXT_CHARS for a in self.answers):
            raise ValueError(
                f"{name}: answers hold {len(self.answers):,} texts of up to {max(map(len, self.answers)):,} "
                f"characters; a sample takes at most {MAX_ANSWERS} of {MAX_TEXT_CHARS:,} each: is the file broken?"
            )
        if size is None and isinstance(self.image, Image.Image):
            size = self.image.size
        for kind, boxes in (("region", self.regions), ("detail", self.details)):
            if not isinstance(boxes, (list, tuple)):
                raise ValueError(f"{name}: {kind}s must be a list of boxes, got {short(boxes)}")
            for k, b in enumerate(boxes):
                check_box(b, f"{name}: {kind} {k}", size)

    def check_text(self) -> None:
        """ValueError naming the sample when its question or rationale holds control-token text
        (`<|image_pad|>`, `<|im_end|>`, ...): a rationale may only end its last text with `<|im_end|>`."""
        name = f"sample {short(self.sample_id or '?')}"
        check_plain_text(self.question, f"{name}: its question")
        texts = [p for p in self.rationale or [] if p.kind != IMAGE]
        for k, p in enumerate(texts):
            text = p.text[: -len(IM_END)] if k == len(texts) - 1 and p.text.endswith(IM_END) else p.text
            check_plain_text(text, f"{name}: its rationale (text {k})")

    @property
    def answer(self) -> str:
        return self.answers[0]

    def load_image(self) -> Image.Image:
        """The image as RGB; a clear error names the path when it is missing or corrupt."""
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        if callable(self.image):  # e.g. an r3lab.data.world.Scene: rendered on demand, never held in memory
            return self.image().convert("RGB")
        path = Path(self.image)
        if not path.is_file():
            raise FileNotFoundError(f"sample {self.sample_id or '?'}: image file {path} does not exist")
        try:
            return read_image(path)
        except ValueError as e:
            raise ValueError(f"sample {self.sample_id or '?'}: {e}") from None

    def prompt(self, view: ViewConfig, prompt: "PromptConfig | None" = None) -> Trajectory:
        """The prompt-only trajectory (what a rollout starts from)."""
        return Trajectory.start(
            self.load_image(),
            self.question,
            view,
            prompt,
            answers=list(self.answers),
            gt_boxes=list(self.regions),
            family=self.family,
            sample_id=self.sample_id,
        )

    def reference(self, view: ViewConfig, prompt: "PromptConfig | None" = None) -> Trajectory:
        """Prompt + reference rationale; crop pixels are cut lazily by `Trajectory.tokenize`."""
        if self.rationale is None:
            raise ValueError(f"sample {self.sample_id or '?'} has no reference rationale")
        self.check_text()  # again: a notebook may have edited the sample since it was made
        traj = self.prompt(view, prompt)
        turn = traj.calls.grammar == "tool"  # each crop comes back in a tool-response turn, as in a rollout
        for p in self.rationale:
            if p.kind == IMAGE:
                traj.pieces += [Piece(ENV, TOOL_TURN[0], tag="tool")] if turn else []
                traj.pieces.append(crop_piece(p.info.box_input, traj.main.info.orig_size, p.image))
                traj.pieces += [Piece(ENV, TOOL_TURN[1], tag="tool")] if turn else []
            else:
                traj.pieces.append(Piece(p.kind, p.text, tag=p.tag or ("reasoning" if p.kind == MODEL else "note")))
        return traj
