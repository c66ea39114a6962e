"""The Trajectory: ordered, labelled pieces of one interleaved reasoning episode.

A piece is `model_text` (tokens the policy wrote: the only tokens with a loss), `env_text` (text
the environment wrote: the prompt, notes about invalid crop calls; conditioning only) or `image`
(the main image or a zoomed crop; conditioning only). Token ids, SFT labels, R-GRPO masks,
rendering, visualizers and explanations all derive from the pieces (`r3lab.core.pieces`; importable from here).
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from .answer import extract_answer
from .crop_calls import CallStyle, CropCall, Verdict, find_crop_calls
from .pieces import ENV, IMAGE, KINDS, MODEL, CropEvent, ImageInfo, Piece, crop_piece
from .policy_like import PolicyLike
from .prompt import PromptConfig, check_plain_text
from .regions import Box, Frame, ViewConfig, crop_and_zoom, smart_resize
from .settings import short

__all__ = [
    "MODEL",
    "ENV",
    "IMAGE",
    "KINDS",
    "ImageInfo",
    "Piece",
    "crop_piece",
    "CropEvent",
    "Trajectory",
]  # its pieces too


@dataclass
class Trajectory:
    pieces: list[Piece]
    question: str = ""
    answers: list[str] = field(default_factory=list)  # accepted ground-truth answers
    gt_boxes: list[Box] = field(default_factory=list)  # ground-truth regions, original pixels
    family: str = ""
    sample_id: str = ""
    events: list[CropEvent] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # rewards, group, limits hit, ...
    calls: CallStyle = field(default_factory=CallStyle)  # how its crop calls are written (frame, grammar)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def start(
        cls, image: Image.Image, question: str, view: ViewConfig, prompt: PromptConfig | None = None, **kw
    ) -> "Trajectory":
        """The prompt of the official layout: system turn, user turn [image, question + instruction]."""
        prompt = prompt or PromptConfig()
        name = f"sample {short(kw.get('sample_id') or '?')}"
        check_plain_text(question, f"{name}: its question")
        image = image.convert("RGB")
        try:
            frame = Frame.of(image.size, view)
        except ValueError as e:  # e.g. a 1x400 image: smart-resize refuses aspect ratios over 200
            raise ValueError(
                f"{name}: its {image.width}x{image.height} image cannot be shown to the model ({e}); "
                "crop or pad it, or drop the sample"
            ) from None
        head, tail = prompt.head_tail(question)
        main = Piece(IMAGE, image=image, info=ImageInfo("main", frame.input_size, image.size), tag="main")
        return cls(
            [Piece(ENV, head, tag="prompt"), main, Piece(ENV, tail, tag="prompt")],
            question=question,
            calls=prompt.calls,
            **kw,
        )

    def add_crop(self, box_input: Box, view: ViewConfig, image: Image.Image | None = None) -> Piece:
        """Append the zoomed crop of `box_input` (main input frame); the pixels are cut now unless given."""
        main = self.main
        crop = crop_and_zoom(main.image, box_input, view)
        info = ImageInfo("crop", crop.image.size, main.info.orig_size, crop.box_input, crop.box_orig, crop.zoom)
        piece = Piece(IMAGE, image=image if image is not None else crop.image, info=info, tag="crop")
        self.pieces.append(piece)
        return piece

    def copy(self) -> "Trajectory":
        """An independent copy: new pieces (ids, log-probs and image infos copied), lists and meta;
        the PIL images are shared, never modified."""
        pieces = [
            replace(
                p,
                ids=None if p.ids is None else list(p.ids),
                logprobs=None if p.logprobs is None else list(p.logprobs),
                info=None if p.info is None else replace(p.info),
            )
            for p in self.pieces
        ]
        return replace(
            self,
            pieces=pieces,
            answers=list(self.answers),
            gt_boxes=list(self.gt_boxes),
            events=list(self.events),
            meta=dict(self.meta),
        )

    # -- views ---------------------------------------------------------------------------------
    @property
    def main(self) -> Piece:
        for p in self.pieces:
            if p.kind == IMAGE and p.info.role == "main":
                return p
        raise ValueError("trajectory has no main image")

    @property
    def frame(self) -> Frame:
        m = self.main.info
        return Frame(*m.orig_size, *m.input_size)

    @property
    def image_pieces(self) -> list[Piece]:
        return [p for p in self.pieces if p.kind == IMAGE]

    @property
    def crops(self) -> list[Piece]:
        return [p for p in self.pieces if p.kind == IMAGE and p.info.role == "crop"]

    def completion(self) -> str:
        """Everything after the prompt, images shown as <image>: what reward functions read."""
        first = next((i for i, p in enumerate(self.pieces) if p.kind == MODEL), len(self.pieces))
        out = []
        for p in self.pieces[first:]:
            out.append("<image>" if p.kind == IMAGE else p.text)
        return "".join(out)

    def model_text(self) -> str:
        return "".join(p.text for p in self.pieces if p.kind == MODEL)

    def final_answer(self) -> str | None:
        """Content of the last <answer>...</answer> the model wrote (an unclosed one counts)."""
        return extract_answer(self.model_text())

    def crop_events(self) -> list[CropEvent]:
        """The crop events; a reference trajectory records none, so there they are derived from the pieces
        (each crop image piece is explained by the last valid call in the model text just before it)."""
        if self.events or not self.crops:
            return list(self.events)
        out = []
        for i, p in enumerate(self.pieces):
            if p.kind == IMAGE and p.info.role == "crop" and i > 0:
                k = i - 2 if self.calls.grammar == "tool" else i - 1  # tool grammar: a tool turn between them
                if k < 0 or self.pieces[k].kind != MODEL:
                    continue
                calls = [c for c in self.find_calls(self.pieces[k].text) if c.verdict is Verdict.OK]
                if calls:
                    out.append(CropEvent(calls[-1], k, i))
        return out

    def find_calls(self, text: str) -> list[CropCall]:
        """The crop calls in `text` as this trajectory writes them (its frame and grammar), boxes in its input frame."""
        return find_crop_calls(text, self.frame, style=self.calls)

    # -- tokens --------------------------------------------------------------------------------
    def tokenize(self, policy: PolicyLike) -> "Trajectory":
        """Fill in missing text ids, crop pixels and image grids. Idempotent."""
        view = policy.view
        for p in self.pieces:
            if p.kind == IMAGE:
                if p.image is None and p.info.role == "crop":
                    crop = crop_and_zoom(self.main.image, p.info.box_input, view)
                    p.image, p.info.input_size, p.info.zoom = crop.image, crop.image.size, crop.zoom
                    p.info.box_orig = crop.box_orig
                elif p.info.role == "crop" and not all(p.info.input_size):
                    # a pre-made crop (official SFT format): fit it into the crop pixel bounds
                    h, w = smart_resize(
                        p.image.height, p.image.width, view.factor, view.crop_min_pixels, view.crop_max_pixels
                    )
                    p.info.input_size = (w, h)
                if p.info.grid_thw is None:
                    w, h = p.info.input_size
                    ps = policy.patch_size
                    p.info.grid_thw = (1, h // ps, w // ps)
                p.ids = policy.image_ids(p.info.grid_thw)
            elif p.ids is None:
                p.ids = policy.encode(p.text)
        n, ctx = sum(len(p.ids) for p in self.pieces), getattr(policy, "context_length", None)
        if ctx and n > ctx:  # else the forward allocates attention for it first and fails deep inside
            raise ValueError(
                f"sample {short(self.sample_id or '?')}: {n:,} tokens, more than the model's context of "
                f"{ctx:,} positions: shorten its question or rationale, or drop the sample"
            )
        return self

    def _check_tokenized(self):
        if any(p.ids is None for p in self.pieces):
            raise ValueError("trajectory is not tokenized: call traj.tokenize(policy) first")

    def input_ids(self) -> list[int]:
        self._check_tokenized()
        return [i for p in self.pieces for i in p.ids]

    def token_kinds(self) -> list[str]:
        self._check_tokenized()
        return [p.kind for p in self.pieces for _ in p.ids]

    def piece_index(self) -> list[int]:
        """For each token, the index of the piece it belongs to."""
        self._check_tokenized()
        return [k for k, p in enumerate(self.pieces) for _ in p.ids]

    def loss_mask(self) -> torch.Tensor:
        """True on exactly the model_text tokens."""
        return torch.tensor([k == MODEL for k in self.token_kinds()], dtype=torch.bool)

    def labels(self) -> torch.Tensor:
        """HF-style labels: the token id on model_text tokens, -100 elsewhere."""
        ids = torch.tensor(self.input_ids())
        return ids.masked_fill(~self.loss_mask(), -100)

    def old_logprobs(self) -> torch.Tensor:
        """Per-token sampling log-probs (NaN where none were recorded)."""
        out = []
        for p in self.pieces:
            if p.kind == MODEL and p.logprobs is not None:
                out += list(p.logprobs)
            else:
                out += [float("nan")] * len(p.ids)
        return torch.tensor(out, dtype=torch.float32)

    def grids(self) -> list[tuple[int, int, int]]:
        self._check_tokenized()
        return [p.info.grid_thw for p in self.image_pieces]

    def model_images(self) -> list[Image.Image]:
        """Every image at its model-input size, in order."""
        out = []
        for p in self.image_pieces:
            size = tuple(p.info.input_size)
            out.append(p.image if p.image.size == size else p.image.resize(size, Image.BICUBIC))
        return out

    def positions(self, policy: PolicyLike) -> torch.Tensor:
        """Positions (D, L): (3, L) M-RoPE for Qwen, (1, L) for 1-D families."""
        pos, _ = policy.positions(self.input_ids(), self.grids())
        return pos

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self, images: str = "embed", image_dir: str | os.PathLike | None = None) -> dict:
        """JSON-ready dict. images: 'embed' (base64 PNG), 'files' (PNG files in image_dir) or 'none'."""
        if images not in ("embed", "files", "none"):
            raise ValueError("images must be 'embed', 'files' or 'none'")
        pieces = []
        for k, p in enumerate(self.pieces):
            d = {"kind": p.kind, "text": p.text, "ids": p.ids, "logprobs": p.logprobs, "tag": p.tag}
            if p.kind == IMAGE:
                d["info"] = p.info.to_dict()
                d["image"] = _image_out(p.image, images, image_dir, f"{self.sample_id or 'traj'}_{k}.png")
            pieces.append(d)
        return {
            "version": 1,
            "pieces": pieces,
            "question": self.question,
            "answers": self.answers,
            "gt_boxes": [list(b) for b in self.gt_boxes],
            "family": self.family,
            "sample_id": self.sample_id,
            "events": [e.to_dict() for e in self.events],
            "meta": self.meta,
            "calls": self.calls.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict, base: str | os.PathLike | None = None) -> "Trajectory":
        pieces = []
        for pd in d["pieces"]:
            info = ImageInfo.from_dict(pd["info"]) if pd.get("info") else None
            img = _image_in(pd.get("image"), base) if pd["kind"] == IMAGE else None
            pieces.append(
                Piece(pd["kind"], pd.get("text", ""), pd.get("ids"), pd.get("logprobs"), img, info, pd.get("tag", ""))
            )
        return cls(
            pieces,
            d.get("question", ""),
            list(d.get("answers", [])),
            [tuple(b) for b in d.get("gt_boxes", [])],
            d.get("family", ""),
            d.get("sample_id", ""),
            [CropEvent.from_dict(e) for e in d.get("events", [])],
            dict(d.get("meta", {})),
            CallStyle.of(d.get("calls")),
        )  # written before frames were a setting: absolute, json

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict("embed")))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Trajectory":
        return cls.from_dict(json.loads(Path(path).read_text()), base=Path(path).parent)


def _image_out(im: Image.Image | None, mode: str, image_dir, name: str):
    if im is None or mode == "none":
        return None
    if mode == "embed":
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    if image_dir is None:
        raise ValueError("images='files' needs image_dir")
    Path(image_dir).mkdir(parents=True, exist_ok=True)
    im.save(Path(image_dir) / name)
    return str(Path(image_dir) / name)


def _image_in(ref, base) -> Image.Image | None:
    if ref is None:
        return None
    if isinstance(ref, str) and ref.startswith("data:image"):
        data = base64.b64decode(ref.split(",", 1)[1])
        return Image.open(io.BytesIO(data)).convert("RGB")
    path = Path(ref)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if not path.is_file():
        raise FileNotFoundError(f"trajectory image {path} is missing")
    with Image.open(path) as im:
        return im.convert("RGB")
