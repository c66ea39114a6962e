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

from typing import Sequence

import torch

from .hooks import first_tensor, replace_first
from .stream import Stream


def layer_outputs(stream: Stream, embeds: torch.Tensor, deepstack=None, positions: torch.Tensor | None = None,
                  start: int = 0, cache=None) -> list[torch.Tensor]:
    """Each decoder layer's output (1, L', d) for one row, kept at `positions` only (all when None); a run from
    `start` (after `cache`) takes positions in the sequence and keeps them the same."""
    out: list[torch.Tensor] = []

    def keep(module, args, output):
        h = first_tensor(output).detach()
        out.append(h if positions is None else h[:, (positions - start).to(h.device)])

    with torch.no_grad():
        stream.hidden(embeds, deepstack, [(layer, keep) for layer in stream.parts.layers], start, cache)
    return out


def patch_layers(stream: Stream, counterfactual: Stream, mask: torch.Tensor, targets: dict[str, Sequence[int]],
                 chunk: int = 8, reuse: bool = True) -> dict:
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
    same_prefix = p and torch.equal(counterfactual.embeds[:, :p], stream.embeds[:, :p]) and all(
        torch.equal(a, b) for a, b in zip(counterfactual.kwargs.get("deepstack_visual_embeds") or [],
                                          stream.kwargs.get("deepstack_visual_embeds") or []))
    if same_prefix:  # the counterfactual differs only after the prefix: its layer outputs from the same cache
        cached = layer_outputs(counterfactual, counterfactual.embeds[:, p:], positions=where, start=p, cache=cache)
    else:
        cached = layer_outputs(counterfactual, counterfactual.embeds, positions=where)
    levels: list = ["input"] + list(range(stream.parts.n_layers))
    local = (where - p)

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
    out = {"levels": levels, "patched_tokens": int(mask.sum()), "reused_prefix": p, "clean": {}, "patched": {},
           "effect": {}}
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
        raise ValueError(f"block={block} must be >= 1")
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
