"""The pieces of a trajectory: a piece's kind (`model_text`, `env_text`, `image`), `Piece`, `ImageInfo` (where an
image piece comes from and how the model sees it), `crop_piece`, and `CropEvent` (one crop call and what the
environment did with it). `r3lab.core.trajectory` holds them in order."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from .crop_calls import CropCall
from .regions import Box, check_box
from .settings import short

MODEL, ENV, IMAGE = "model_text", "env_text", "image"
KINDS = (MODEL, ENV, IMAGE)


@dataclass
class ImageInfo:
    """Where an image piece comes from and how it is shown to the model."""

    role: str  # "main" or "crop"
    input_size: tuple[int, int]  # (w, h) fed to the vision tower, multiples of the factor
    orig_size: tuple[int, int]  # (w, h) of the original main image
    box_input: Box | None = None  # crop: the box in the main image's model-input frame
    box_orig: tuple[int, int, int, int] | None = None  # crop: inclusive original-pixel box
    zoom: float = 1.0  # crop: official zoom factor
    grid_thw: tuple[int, int, int] | None = None  # set when rendered

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ImageInfo":
        tup = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**tup)


@dataclass
class Piece:
    kind: str  # model_text | env_text | image
    text: str = ""  # text pieces: the text; image pieces: "" (rendered as vision tokens)
    ids: list[int] | None = None  # token ids; filled by `Trajectory.tokenize` when missing
    logprobs: list[float] | None = None  # model_text from a rollout: log-prob of each sampled id
    image: Image.Image | None = None  # main: original pixels; crop: zoomed pixels at input size
    info: ImageInfo | None = None
    tag: str = ""  # prompt | reasoning | answer | note | main | crop ...

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"piece kind must be one of {KINDS}, got {short(self.kind)}")
        if self.kind == IMAGE and self.info is None:
            raise ValueError("an image piece needs an ImageInfo")


def crop_piece(box_input: Box, orig_size: tuple[int, int], image: Image.Image | None = None) -> Piece:
    """A reference rationale's crop: its box in the main image's model-input frame, the original's size, and its
    pixels when they are known (else `Trajectory.tokenize` cuts them). A box that is not 4 finite numbers, is
    inverted or starts left of / above the image is a ValueError (`check_box`)."""
    box = check_box(box_input, "crop box (box_input)")
    if box[0] < 0 or box[1] < 0:
        raise ValueError(f"crop box (box_input) {list(box_input)} lies outside the image (negative coordinates)")
    return Piece(IMAGE, image=image, info=ImageInfo("crop", (0, 0), tuple(orig_size), tuple(box_input)), tag="crop")


@dataclass
class CropEvent:
    """One crop call the model made, where it sits and what the environment did with it."""

    call: CropCall  # span relative to the text of pieces[piece]
    piece: int  # index of the model_text piece holding the call
    image_piece: int | None = None  # index of the inserted crop, None when refused
    note: str = ""  # env_text appended when refused

    @property
    def ok(self) -> bool:
        return self.image_piece is not None

    def to_dict(self) -> dict:
        return {"call": self.call.to_dict(), "piece": self.piece, "image_piece": self.image_piece, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "CropEvent":
        return cls(CropCall.from_dict(d["call"]), d["piece"], d.get("image_piece"), d.get("note", ""))
