"""Positions for interleaved text and images, chunk by chunk: 3-D M-RoPE (Qwen) and 1-D (Idefics3 / SmolVLM).

`get_rope_index` (transformers' Qwen2.5-VL) is shift-equivariant: text advances one position per
token, an image of merged grid (h, w) occupies `max(h, w)` positions with (t, row, col) offsets.
Computing a chunk's positions from `start` = (highest position so far + 1) therefore reproduces the
positions of the whole sequence, which is what lets the rollout engine append crops to a KV cache.
"""

from __future__ import annotations

from typing import Sequence

import torch


def mrope_positions(
    ids: Sequence[int] | torch.Tensor, grids: Sequence, image_token_id: int, merge_size: int, start: int = 0
) -> tuple[torch.Tensor, int]:
    """Positions (3, L) of one row of token ids; returns them and the next free position.

    `grids` holds one (t, h, w) patch grid per run of image tokens in `ids`, in order.
    """
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    n = ids.numel()
    out = torch.empty(3, n, dtype=torch.long)
    is_img = (ids == image_token_id).tolist()
    grid_iter = iter(grids)
    pos, i = start, 0
    while i < n:
        j = i
        while j < n and is_img[j] == is_img[i]:
            j += 1
        if not is_img[i]:
            out[:, i:j] = torch.arange(pos, pos + j - i).expand(3, -1)
            pos += j - i
        else:
            try:
                t, h, w = (int(v) for v in next(grid_iter))
            except StopIteration:
                raise ValueError("more runs of image tokens than image grids") from None
            gh, gw = h // merge_size, w // merge_size
            if (j - i) != t * gh * gw:
                raise ValueError(f"image run of {j - i} tokens does not match grid {(t, h, w)} / merge {merge_size}")
            tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(gh), torch.arange(gw), indexing="ij")
            out[0, i:j] = tt.reshape(-1) + pos
            out[1, i:j] = hh.reshape(-1) + pos
            out[2, i:j] = ww.reshape(-1) + pos
            pos += max(gh, gw)
        i = j
    if next(grid_iter, None) is not None:
        raise ValueError("more image grids than runs of image tokens")
    return out, pos


def batch_positions(
    rows: Sequence[Sequence[int]],
    grids_per_row: Sequence[Sequence],
    image_token_id: int,
    merge_size: int,
    width: int,
    left_pad: bool,
) -> torch.Tensor:
    """Positions (3, B, width) for padded rows; pads get position 0 (they are masked)."""
    out = torch.zeros(3, len(rows), width, dtype=torch.long)
    for b, (ids, grids) in enumerate(zip(rows, grids_per_row)):
        pos, _ = mrope_positions(ids, grids, image_token_id, merge_size)
        n = len(ids)
        if left_pad:
            out[:, b, width - n :] = pos
        else:
            out[:, b, :n] = pos
    return out


def text_positions(ids: Sequence[int] | torch.Tensor, start: int = 0) -> tuple[torch.Tensor, int]:
    """1-D positions (1, L) of one row (a Llama text model: image tokens advance one position each, like text)."""
    n = torch.as_tensor(ids).numel()
    return torch.arange(start, start + n).view(1, n), start + n


def positions_for_model(pos: torch.Tensor) -> torch.Tensor:
    """(D, B, L) positions as the model takes them: (3, B, L) for M-RoPE, (B, L) for 1-D."""
    return pos[0] if pos.shape[0] == 1 else pos
