"""`AttentionMaps`: captured attention from query tokens to image tokens, and what to do with it.

A capture (`r3lab.explain.capture.capture_attention`) yields one per batch row. It maps image tokens to
their merged patch grid and to pixel boxes in the image's own, the main input or the original frame,
aggregates over heads / layers / queries (mean, max, attention rollout; with or without the
attention sink) and measures attention mass inside a box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core.regions import Box
from ..core.settings import short

if TYPE_CHECKING:
    from ..core.trajectory import Trajectory


@dataclass
class AttentionMaps:
    """Captured attention from query tokens to the image tokens of one sequence (one batch row).

    `weights[l, h, q, j]` is the softmax probability that query token `query_pos[q]` gives image token
    `image_pos[j]` at layer `layers[l]`, head `heads[h]`; `sink[l, h, q]` the probability it gives the
    sequence's first token (the attention sink). Image `i` owns tokens `spans[i]` laid out row-major on
    its merged grid (grid_thw / merge). Aggregation arguments, shared by every method:

    - `heads`: "mean" | "max" | head id(s) (averaged); `layers`: "mean" | "max" | layer id(s) | "rollout"
      (attention rollout, Abnar & Zuidema 2020, chained over the captured consecutive layers with the
      residual as 0.5·A + 0.5·I; needs `rollout=True` at capture).
    - `sink`: "renorm" (default: divide by 1 - sink mass, i.e. shares of the non-sink attention, so a
      head that parks most of its mass on the first token does not wash out), "keep" (raw
      probabilities) or "image" (normalise within each image: a distribution over its grid).
    - `queries`: None (all captured) or token positions (a subset of `query_pos`).
    """

    weights: torch.Tensor  # (layers, heads, queries, image tokens), fp32 CPU
    sink: torch.Tensor  # (layers, heads, queries)
    query_pos: torch.Tensor  # (queries,) token positions in the sequence
    image_pos: torch.Tensor  # (image tokens,) token positions
    spans: list  # per image: [start, end) into image_pos
    grids: list  # per image: patch grid (t, h, w)
    merge: int  # spatial merge size of the vision tower
    patch: int  # patch size in pixels
    layers: list  # captured text layers
    heads: list  # captured heads
    full: torch.Tensor | None = None  # (layers, L, L) head-mean attention, rollout captures only
    infos: list | None = None  # ImageInfo per image, from the attached trajectory
    images: list | None = None  # each image at its model-input size
    trajectory: "Trajectory | None" = field(default=None, repr=False)

    def attach(self, traj: "Trajectory") -> "AttentionMaps":
        if len(traj.image_pieces) != len(self.spans):
            raise ValueError(f"trajectory has {len(traj.image_pieces)} images, the capture saw {len(self.spans)}")
        self.trajectory, self.infos, self.images = traj, [p.info for p in traj.image_pieces], traj.model_images()
        return self

    # -- aggregation ---------------------------------------------------------------------------
    def _qsel(self, queries) -> torch.Tensor:
        if queries is None:
            return torch.arange(len(self.query_pos))
        want = torch.as_tensor(queries).reshape(-1).long()
        sel = torch.nonzero(torch.isin(self.query_pos, want), as_tuple=True)[0]
        if len(sel) == 0:
            raise ValueError(
                f"none of the {len(want)} requested query positions was captured; "
                "capture with queries='all' or include these positions"
            )
        return sel

    def token_scores(self, queries=None, heads="mean", layers="mean", sink="renorm") -> torch.Tensor:
        """One score per image token (all images), averaged over the selected queries."""
        qs = self._qsel(queries)
        if layers == "rollout":
            w, s = self._rollout(qs, heads)
        else:
            w, s = self.weights[:, :, qs], self.sink[:, :, qs]
            if sink == "renorm":
                w = w / (1 - s).clamp_min(1e-6)[..., None]
            w = _pick(_pick(w, heads, self.heads, 1, "head"), layers, self.layers, 0, "layer")  # (Q, N)
        if sink == "renorm" and layers == "rollout":
            w = w / (1 - s).clamp_min(1e-6)[:, None]
        elif sink not in ("renorm", "keep", "image"):
            raise ValueError(f"sink={short(sink)}: use 'renorm', 'keep' or 'image'")
        out = w.mean(0)
        if sink == "image":
            out = out.clone()
            for a, b in self.spans:
                out[a:b] = out[a:b] / out[a:b].sum().clamp_min(1e-12)
        return out

    def _rollout(self, qs, heads):
        if self.full is None:
            raise ValueError("layers='rollout' needs the full matrices: capture with rollout=True")
        if heads != "mean":
            raise ValueError("rollout uses the head mean taken at capture time; pass heads='mean'")
        if self.layers != list(range(self.layers[0], self.layers[-1] + 1)):
            raise ValueError(f"rollout chains consecutive layers; captured {self.layers} (use e.g. layers=range(k, n))")
        L = self.full.shape[-1]
        v = torch.zeros(len(qs), L)
        v[torch.arange(len(qs)), self.query_pos[qs]] = 1.0
        for A in reversed(self.full):
            A = 0.5 * A + 0.5 * torch.eye(L)
            v = v @ (A / A.sum(-1, keepdim=True))
        return v[:, self.image_pos], v[:, 0]

    def grid(self, image: int = 0, **agg) -> torch.Tensor:
        """The aggregated attention on image `image`'s merged grid, shape (rows, cols)."""
        t, gh, gw = self.merged_shape(image)
        a, b = self.spans[image]
        return self.token_scores(**agg)[a:b].reshape(t, gh, gw).mean(0)

    def merged_shape(self, image: int = 0) -> tuple[int, int, int]:
        t, h, w = self.grids[image]
        return t, h // self.merge, w // self.merge

    # -- geometry ------------------------------------------------------------------------------
    def cell_boxes(self, image: int = 0, frame: str = "image") -> torch.Tensor:
        """(rows*cols, 4) box of every merged cell, row-major, in a frame.

        frame: "image" (that image's own model-input pixels), "input" (the main image's model-input
        frame, where crop calls live) or "orig" (the main image's original pixels).
        """
        _, gh, gw = self.merged_shape(image)
        f = self.patch * self.merge
        r, c = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        boxes = torch.stack([c * f, r * f, (c + 1) * f, (r + 1) * f], -1).reshape(-1, 4).double()
        if frame == "image":
            return boxes
        if frame not in ("input", "orig"):
            raise ValueError(f"frame={short(frame)}: use 'image', 'input' or 'orig'")
        info, main = self._info(image), self._info(0)
        iw, ih = info.input_size
        if info.role == "main":
            ow, oh = main.orig_size
            sx, sy = ow / iw, oh / ih
            ox, oy = 0.0, 0.0
        else:
            x1, y1, x2, y2 = info.box_orig  # inclusive original-pixel box the crop was cut from
            sx, sy, ox, oy = (x2 + 1 - x1) / iw, (y2 + 1 - y1) / ih, x1, y1
        orig = boxes * torch.tensor([sx, sy, sx, sy], dtype=torch.double) + torch.tensor(
            [ox, oy, ox, oy], dtype=torch.double
        )
        if frame == "orig":
            return orig
        (ow, oh), (mw, mh) = main.orig_size, main.input_size
        return orig * torch.tensor([mw / ow, mh / oh, mw / ow, mh / oh], dtype=torch.double)

    def _info(self, image: int):
        if self.infos is None:
            raise ValueError("this needs the trajectory's image infos: maps.attach(trajectory) first")
        return self.infos[image]

    def to_pixels(self, image: int = 0, frame: str = "image", interpolate: str = "nearest", **agg) -> np.ndarray:
        """The grid upsampled to pixels: "image" (H, W of that image's input) or "orig" (the main
        image's original frame; a crop's map fills its box, zeros elsewhere)."""
        g = self.grid(image, **agg)[None, None].float()
        mode = {"nearest": "nearest", "bilinear": "bilinear"}.get(interpolate)
        if mode is None:
            raise ValueError(f"interpolate={short(interpolate)}: use 'nearest' or 'bilinear'")
        kw = {} if mode == "nearest" else {"align_corners": False}
        if frame == "image":
            _, gh, gw = self.merged_shape(image)
            f = self.patch * self.merge
            return torch.nn.functional.interpolate(g, size=(gh * f, gw * f), mode=mode, **kw)[0, 0].numpy()
        if frame != "orig":
            raise ValueError(f"frame={short(frame)}: use 'image' or 'orig'")
        ow, oh = self._info(0).orig_size
        cells = self.cell_boxes(image, "orig")
        x1, y1, x2, y2 = (int(round(float(v))) for v in (*cells[0, :2], *cells[-1, 2:]))
        out = np.zeros((oh, ow), dtype=np.float32)
        x2, y2 = min(x2, ow), min(y2, oh)
        out[y1:y2, x1:x2] = torch.nn.functional.interpolate(g, size=(y2 - y1, x2 - x1), mode=mode, **kw)[0, 0].numpy()
        return out

    def mass(self, box: Box, image: int = 0, frame: str = "input", **agg) -> float:
        """Share of the image's aggregated attention inside `box` (cells counted by overlap area)."""
        g = self.grid(image, **agg).reshape(-1).double()
        cells = self.cell_boxes(image, frame)
        b = torch.tensor(box, dtype=torch.double)
        ix = (torch.minimum(cells[:, 2], b[2]) - torch.maximum(cells[:, 0], b[0])).clamp_min(0)
        iy = (torch.minimum(cells[:, 3], b[3]) - torch.maximum(cells[:, 1], b[1])).clamp_min(0)
        frac = ix * iy / ((cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1]))
        total = g.sum()
        return float((g * frac).sum() / total) if total > 0 else 0.0

    def top_regions(self, image: int = 0, k: int = 3, frame: str = "input", **agg) -> list[dict]:
        """The k cells with the most attention: [{"box": (x1, y1, x2, y2) in `frame`, "mass": share}]."""
        g = self.grid(image, **agg).reshape(-1)
        share = g / g.sum().clamp_min(1e-12)
        cells = self.cell_boxes(image, frame)
        idx = torch.argsort(share, descending=True)[:k]
        return [{"box": tuple(float(v) for v in cells[i]), "mass": float(share[i]), "cell": int(i)} for i in idx]


def _pick(w: torch.Tensor, how, ids: list, dim: int, what: str) -> torch.Tensor:
    if how == "mean":
        return w.mean(dim)
    if how == "max":
        return w.amax(dim)
    sel = [how] if isinstance(how, int) else list(how)
    try:
        idx = [ids.index(int(i)) for i in sel]
    except ValueError:
        raise ValueError(f"{what}(s) {short(sel)} were not captured; captured {what}s: {ids}") from None
    return w.index_select(dim, torch.tensor(idx)).mean(dim)


def fold_tiles(policy, weights: torch.Tensor, img: torch.Tensor, spans, grids):
    """SmolVLM / Idefics3: each image's tiles and global view folded onto one cell grid (mass kept: a global
    token's weight spreads evenly over the cells it covers). Returns weights over cells, each cell's token
    position (its tile token; a one-tile image's global token), the cell spans and the (1, H, W) grids."""
    out, pos, cells, shapes, n = [], [], [], [], 0
    for (s, e), grid in zip(spans, grids):
        m, (H, W) = policy.rules.image_cells(policy, grid)
        out.append(weights[..., s:e] @ m.T)
        pos.append(img[s:e][m.argmax(1)])
        cells.append((n, n + H * W))
        shapes.append((1, H, W))
        n += H * W
    return torch.cat(out, -1), torch.cat(pos), cells, shapes
