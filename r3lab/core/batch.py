"""Trajectories padded into one batch for a teacher-forced forward, and the keys the model takes.

`collate` is the one place that lines trajectories up: token ids, attention mask, explicit 3-D
positions, pixels and grids of every image, the loss mask (model_text tokens) and the rollout's
recorded log-probs; `model_inputs` picks what the model's forward takes from it.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .policy_like import PolicyLike
from .rope import positions_for_model
from .trajectory import Trajectory

MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids", "pixel_values", "image_grid_thw")


def model_inputs(batch: dict) -> dict:
    """The entries of a `collate` batch that the model's forward takes (not the masks or old log-probs)."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def by_length(lengths: Sequence[int], parts: int = 0, rows: int = 0) -> list[list[int]]:
    """Row indices grouped into micro-batches of similar length: sorted by length (stable), then cut into `parts`
    near-equal groups or groups of at most `rows`. A padded batch costs its longest row times its rows, so rows of
    one length together cost less padding, and the summed gradient is the same whichever way rows are grouped.

    >>> by_length([400, 130, 250, 395], parts=2)
    [[1, 2], [3, 0]]
    """
    if (parts > 0) == (rows > 0):
        raise ValueError(f"give parts or rows (one of them > 0), got parts={parts}, rows={rows}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if rows:
        return [order[i : i + rows] for i in range(0, len(order), rows)]
    size, extra = divmod(len(order), parts)
    cuts = [0]
    for k in range(parts):
        cuts.append(cuts[-1] + size + (k < extra))
    return [order[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def collate(trajs: Sequence[Trajectory], policy: PolicyLike, left_pad: bool = False) -> dict:
    """Pad tokenized trajectories into one batch for a teacher-forced forward.

    Returns input_ids, attention_mask, position_ids ((3, B, L) for M-RoPE, (B, L) for 1-D positions), the
    image arguments of the policy's family (Qwen: pixel_values, image_grid_thw; SmolVLM: pixel_values),
    loss_mask (B, L) and old_logprobs (B, L), all on the policy's device.
    """
    for t in trajs:
        t.tokenize(policy)
    rows = [t.input_ids() for t in trajs]
    width = max(len(r) for r in rows)
    B = len(rows)
    ids = torch.full((B, width), policy.pad_id, dtype=torch.long)
    attn = torch.zeros(B, width, dtype=torch.long)
    mask = torch.zeros(B, width, dtype=torch.bool)
    old = torch.full((B, width), float("nan"))
    pos = torch.zeros(policy.position_dims, B, width, dtype=torch.long)
    images, grids = [], []
    for b, (t, r) in enumerate(zip(trajs, rows)):
        sl = slice(width - len(r), width) if left_pad else slice(0, len(r))
        ids[b, sl] = torch.tensor(r)
        attn[b, sl] = 1
        mask[b, sl] = t.loss_mask()
        old[b, sl] = t.old_logprobs()
        pos[:, b, sl] = policy.positions(r, t.grids())[0]
        images += t.model_images()
        grids += t.grids()
    dev = policy.device
    out = {
        "input_ids": ids,
        "attention_mask": attn,
        "position_ids": positions_for_model(pos),
        "loss_mask": mask,
        "old_logprobs": old,
    }
    out = {k: v.to(dev) for k, v in out.items()}
    if images:
        pv, g = policy.encode_images(images)
        if [tuple(x) for x in g.tolist()] != [tuple(x) for x in grids]:
            raise RuntimeError(f"image processor grids {g.tolist()} differ from the trajectory's {grids}")
        out.update(policy.vision_inputs(pv, g))
    return out
