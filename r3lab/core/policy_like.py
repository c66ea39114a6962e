"""What the core asks of a policy: the slice of `r3lab.model.Policy` that tokenising and batching use.

A `typing.Protocol`, so the core states its needs without importing the model layer above it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Protocol

if TYPE_CHECKING:  # third-party types only
    import torch
    from PIL import Image

    from .regions import ViewConfig


class PolicyLike(Protocol):
    """Token ids, geometry and image encoding of a vision-language model (`r3lab.model.Policy` has them)."""

    view: "ViewConfig"

    @property
    def patch_size(self) -> int: ...
    @property
    def merge_size(self) -> int: ...
    @property
    def image_token_id(self) -> int: ...
    @property
    def pad_id(self) -> int: ...
    @property
    def device(self) -> "torch.device": ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Iterable[int]) -> str: ...
    def image_ids(self, grid_thw) -> list[int]: ...
    def encode_images(self, images: "list[Image.Image]") -> "tuple[torch.Tensor, torch.Tensor]": ...
