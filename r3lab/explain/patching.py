"""Activation patching: tokens of a trajectory replaced by a counterfactual's, at the input or after a layer.

The counterfactual is the same trajectory with one image changed (a blank, the coarse view or another
sample's crop in place of the crop; a region of the main image painted blank): every token keeps its place,
so a position of one is a position of the other. `patch_layers` sweeps the levels ("input", then the output
of each decoder layer): at level l the patched tokens' residual stream is the counterfactual's from there on,
so the effect at level l says how much of what the targets need was still in those tokens after layer l
(it falls to zero once later tokens have read it). All levels run as rows of one batch (`chunk` at a time);
the counterfactual's layer outputs come from one extra forward. `patch_map` patches the main image's cells
block by block at the input (occlusion by patching) and maps the effect on a target, the map the
faithfulness measures compare with the gradients' and attention's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from ..core.regions import Box
from ..core.settings import short
from ..core.trajectory import IMAGE, Piece, Trajectory
from . import faithfulness as faith
from .contract import BLANK, Call, MethodResult
from .hooks import first_tensor, replace_first
from .stream import Stream
from .swaps import counterfactual_trajectory


def layer_outputs(
    stream: Stream,
    embeds: torch.Tensor,
    deepstack=None,
    positions: torch.Tensor | None = None,
    start: int = 0,
    cache=None,
) -> list[torch.Tensor]:
    """Each decoder layer's output (1, L', d) for one row, kept at `positions` only (all when None); a run from
    `start` (after `cache`) takes positions in the sequence and keeps them the same."""
    out: list[torch.Tensor] = []

    def keep(module, args, output):
        h = first_tensor(output).detach()
        out.append(h if positions is None else h[:, (positions - start).to(h.device)])

    with torch.no_grad():
        stream.hidden(embeds, deepstack, [(layer, keep) for layer in stream.parts.layers], start, cache)
    return out


def patch_layers(
    stream: Stream,
    counterfactual: Stream,
    mask: torch.Tensor,
    targets: dict[str, Sequence[int]],
    chunk: int = 8,
    reuse: bool = True,
) -> dict:
    """Effect of patching the tokens where `mask` (L,) is set with `counterfactual`'s, level by level.

    Returns {"levels": ["input", 0, 1, ...], "clean": {target: logp}, "patched": {target: [logp per level]},
    "effect": {target: [clean - patched per level]}, "reused_prefix": tokens} (> 0: the original tokens helped).
    reuse: the tokens before the first patched one are the same in every run: computed once (a KV cache) and
    reused, so each level costs a forward over the rest of the sequence only (when every target lies after them;
    not on hybrid models, whose linear-attention state is no KV cache).
    """
    targets = {k: list(v) for k, v in targets.items() if v}
    if not targets:
        raise ValueError("no target tokens to score")
    mask = mask.bool().cpu()
    if not mask.any():
        raise ValueError("nothing to patch: the token mask is empty")
    allpos = sorted({p for ps in targets.values() for p in ps})
    where = torch.nonzero(mask, as_tuple=True)[0]
    # a hybrid model's linear-attention state (Qwen3.5) is not a KV cache a batch can share: no reuse there
    hybrid = "linear_attention" in (getattr(stream.parts.language_model.config, "layer_types", None) or [])
    p = int(where[0]) if reuse and not hybrid and int(where[0]) > 0 and allpos[0] - 1 >= int(where[0]) else 0
    cache = stream.prefix(p) if p else None
    cf_e, cf_ds = stream.swapped(counterfactual, mask[None])
    same_prefix = (
        p
        and torch.equal(counterfactual.embeds[:, :p], stream.embeds[:, :p])
        and all(
            torch.equal(a, b)
            for a, b in zip(
                counterfactual.kwargs.get("deepstack_visual_embeds") or [],
                stream.kwargs.get("deepstack_visual_embeds") or [],
            )
        )
    )
    if same_prefix:  # the counterfactual differs only after the prefix: its layer outputs from the same cache
        cached = layer_outputs(counterfactual, counterfactual.embeds[:, p:], positions=where, start=p, cache=cache)
    else:
        cached = layer_outputs(counterfactual, counterfactual.embeds, positions=where)
    levels: list = ["input"] + list(range(stream.parts.n_layers))
    local = where - p

    def make(rows: slice):
        k = rows.stop - rows.start
        e = stream.embeds[:, p:].repeat(k, 1, 1)
        ds = None
        if rows.start == 0:  # level "input" is row 0: the inputs themselves swapped
            e[0] = cf_e[0, p:]
            if cf_ds is not None:
                clean = [d.repeat(k, 1) for d in stream.kwargs["deepstack_visual_embeds"]]
                n = len(cf_ds[0])
                ds = [torch.cat([c[:n], c2[n:]]) for c, c2 in zip(cf_ds, clean)]
        fwd = []
        for r in range(max(rows.start, 1), rows.stop):
            layer, row = r - 1, r - rows.start

            def patch(module, args, output, row=row, layer=layer):
                h = first_tensor(output).clone()
                h[row, local.to(h.device)] = cached[layer][0].to(h.dtype)
                return replace_first(output, h)

            fwd.append((stream.parts.layers[layer], patch))
        return e, ds, fwd

    with torch.no_grad():
        clean = stream.logprobs(stream.hidden(stream.embeds[:, p:], start=p, cache=cache), allpos, p)[0].cpu()
    lps = stream.rows(len(levels), make, allpos, chunk, p, cache)
    idx = {q: i for i, q in enumerate(allpos)}
    out = {
        "levels": levels,
        "patched_tokens": int(mask.sum()),
        "reused_prefix": p,
        "clean": {},
        "patched": {},
        "effect": {},
    }
    for name, ps in targets.items():
        sel = [idx[q] for q in ps]
        c = float(clean[sel].sum())
        pat = [float(v) for v in lps[:, sel].sum(-1)]
        out["clean"][name], out["patched"][name] = c, pat
        out["effect"][name] = [c - v for v in pat]
    return out


def cell_blocks(grid: tuple[int, int], block: int) -> torch.Tensor:
    """(n_blocks, rows*cols) bool: the cells of each `block` x `block` tile of the grid, row-major."""
    if block < 1:
        raise ValueError(f"block={short(block)} must be >= 1")
    gh, gw = grid
    r, c = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    tile = (r // block) * ((gw + block - 1) // block) + c // block
    n = int(tile.max()) + 1
    return torch.stack([(tile == t).reshape(-1) for t in range(n)])


def patch_map(stream: Stream, blank: Stream, positions: Sequence[int], block: int = 1, chunk: int = 8) -> torch.Tensor:
    """(rows, cols): the drop of the targets' summed log-prob when a block of main-image cells is replaced by
    the blank image's at the input (every cell of a block gets the block's drop)."""
    if not positions:
        raise ValueError("no target tokens to score")
    blocks = cell_blocks(stream.grid, block)

    def make(rows: slice):
        cells = blocks[rows]
        e, ds = stream.swapped(blank, stream.main_mask(cells))
        return e, ds, ()

    with torch.no_grad():
        clean = float(stream.score(stream.embeds, positions)[0])
    drops = clean - stream.rows(len(blocks), make, positions, chunk).sum(-1)
    return (drops[:, None] * blocks.float()).sum(0).reshape(stream.grid)


def run(name: str, call: Call) -> list[MethodResult]:
    """`explain`'s patching methods for one crop call: "patching", a map per target (`patch_map`, the main image's
    cells replaced by a blank image's); "patch_layers", the crop's tokens swapped (effect on read and answer) and the
    main image inside the box painted blank (effect on the box and the answer), level by level."""
    policy, traj, stream, ev, k, pos, cfg, other = (
        call.policy,
        call.trajectory,
        call.stream,
        call.event,
        call.index,
        call.positions,
        call.config,
        call.other,
    )
    if name == "patching":
        return [
            MethodResult(
                name,
                t,
                map=patch_map(stream, call.blank, pos[t], cfg.block, cfg.chunk).tolist(),
                data={"block": cfg.block, "counterfactual": "blank"},
            )
            if pos[t]
            else MethodResult(name, t, available=False, reason=f"the trajectory has no {t} tokens for this crop")
            for t in cfg.targets
        ]
    data, notes = {}, []
    if ev.ok:
        crop_mask = torch.zeros(stream.length, dtype=torch.bool)
        a = sum(len(p.ids) for p in traj.pieces[: ev.image_piece])
        ids = traj.pieces[ev.image_piece].ids
        crop_mask[[a + i for i, t in enumerate(ids) if t == policy.image_token_id]] = True
        for s in cfg.swaps:
            try:
                image = _other_crop(other) if s == "other" else None
                cf = counterfactual_trajectory(policy, traj, k, "blank" if s == "other" else s, image=image)
            except ValueError as e:
                notes.append(f"swap {s}: {e}")
                continue
            targets = {t: pos[t] for t in ("read", "answer") if pos[t]}
            if targets:
                data[f"crop:{s}"] = patch_layers(stream, Stream.of(policy, cf), crop_mask, targets, cfg.chunk)
    else:
        notes.append("the call was refused: no crop to patch")
    if ev.call.box is not None:
        blanked = Stream.of(policy, painted(traj, ev.call.box))
        cells = _cells_in(stream, ev.call.box)
        targets = {t: pos[t] for t in ("box", "answer") if pos[t]}
        if cells.any() and targets:
            data["region:blank"] = patch_layers(stream, blanked, stream.main_mask(cells[None])[0], targets, cfg.chunk)
    if not data:
        return [MethodResult(name, None, available=False, reason="; ".join(notes) or "nothing to patch")]
    return [MethodResult(name, None, data={**data, "notes": notes})]


def _other_crop(other: Trajectory | None) -> Image.Image:
    if other is None or not other.crops:
        raise ValueError("no other sample's crop was given (explain(..., other=trajectory with a crop))")
    c = other.crops[0]
    return c.image


def _cells_in(stream: Stream, box: Box) -> torch.Tensor:
    """(n,) the main image's cells whose centre lies inside `box`."""
    xy = faith.cell_centres(stream.grid, stream.cell)
    return (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])


def painted(traj: Trajectory, box: Box | None) -> Trajectory:
    """A copy whose main image is blank inside `box` (input frame; None: everywhere). Same size, same tokens."""
    new = traj.copy()
    i = next(j for j, p in enumerate(new.pieces) if p.kind == IMAGE and p.info.role == "main")
    old = new.pieces[i]
    im = old.image.copy()
    if box is None:
        im.paste(BLANK, (0, 0, *im.size))
    else:
        x1, y1, x2, y2 = traj.frame.to_orig(box)
        ImageDraw.Draw(im).rectangle((x1, y1, x2, y2), fill=BLANK)
    new.pieces[i] = Piece(IMAGE, image=im, info=replace(old.info), ids=old.ids, tag=old.tag)
    return new
