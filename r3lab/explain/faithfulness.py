"""Faithfulness of explanation maps, measured on the same crops: pointing game, deletion and insertion curves,
and a random-map baseline.

- pointing game (Zhang et al. 2016): the map's hottest cell has its centre inside the named landmark's region.
  A random map's expected score is the share of cells whose centre lies there (`chance_pointing`), computed
  exactly rather than sampled.
- deletion / insertion (RISE, Petsiuk et al. 2018): the map's top cells are replaced by a blank image's at the
  decoder's input (deletion), or only they are kept on a blank image (insertion), a fraction at a time; the
  target's per-token probability (exp of the mean log-prob) is read at each step and the curve's area
  (trapezoid over the fraction) reported. A faithful map has a low deletion and a high insertion area.
  The random baseline's curves come from one random map per crop, seeded by sample and event.
"""

from __future__ import annotations

import math
import zlib
from typing import Sequence

import torch

from ..core.regions import Box
from ..core.settings import short
from .stream import Stream

FIELDS = ("pointing_game", "deletion_auc", "insertion_auc")


def cell_centres(grid: tuple[int, int], cell: int) -> torch.Tensor:
    """(rows*cols, 2) centre of every merged cell in the main image's model-input pixels, row-major."""
    gh, gw = grid
    r, c = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.stack([(c.reshape(-1) + 0.5) * cell, (r.reshape(-1) + 0.5) * cell], -1).double()


def _inside(grid, cell, box: Box) -> torch.Tensor:
    xy = cell_centres(grid, cell)
    return (xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3])


def pointing_game(cell_map: torch.Tensor, landmark: Box, cell: int) -> bool:
    """Whether the map's hottest cell (first of ties) has its centre inside `landmark` (input frame)."""
    if cell_map is None:  # a record's method that was not available (its result's `reason` says why)
        raise ValueError(
            "no map to score: the method was not available for this record (record.result(method, "
            "target).reason says why, e.g. captum missing: pip install 'r3lab[explain]')"
        )
    m = torch.as_tensor(cell_map, dtype=torch.float64)
    if not torch.isfinite(m).all():
        raise ValueError("the map holds NaN / inf values")
    return bool(_inside(tuple(m.shape), cell, landmark)[int(m.reshape(-1).argmax())])


def chance_pointing(grid: tuple[int, int], cell: int, landmark: Box) -> float:
    """The pointing game's expected score for a map of i.i.d. random values: the share of cells inside."""
    return float(_inside(grid, cell, landmark).double().mean())


def random_map(grid: tuple[int, int], key: str, seed: int = 0) -> torch.Tensor:
    """A uniform random map, reproducible from `key` (e.g. sample id and event) and `seed`."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{seed}/{key}".encode()))
    return torch.rand(grid, generator=g, dtype=torch.float64)


def curves(
    stream: Stream, blank: Stream, cell_map: torch.Tensor, positions: Sequence[int], steps: int = 8, chunk: int = 8
) -> dict:
    """Deletion and insertion curves of `cell_map` on the target tokens at `positions`.

    Returns {"fractions", "deletion", "insertion", "deletion_auc", "insertion_auc"}; each curve value is the
    target's per-token probability with that fraction of the top cells deleted (inserted)."""
    if not positions:
        raise ValueError("no target tokens to score")
    if steps < 1:
        raise ValueError(f"steps={short(steps)} must be >= 1")
    n = len(stream.main_pos)
    order = torch.argsort(torch.as_tensor(cell_map, dtype=torch.float64).reshape(-1), descending=True)
    fractions = [j / steps for j in range(steps + 1)]
    top = torch.zeros(len(fractions), n, dtype=torch.bool)
    for j, f in enumerate(fractions):
        top[j, order[: math.ceil(f * n)]] = True
    swap = torch.cat([top, ~top])  # deletion rows: the top cells blank; insertion rows: all but the top blank

    def make(rows: slice):
        e, ds = stream.swapped(blank, stream.main_mask(swap[rows]))
        return e, ds, ()

    lp = stream.rows(len(swap), make, positions, chunk).mean(-1).exp().tolist()
    dele, ins = lp[: len(fractions)], lp[len(fractions) :]
    return {
        "fractions": fractions,
        "deletion": dele,
        "insertion": ins,
        "deletion_auc": _auc(fractions, dele),
        "insertion_auc": _auc(fractions, ins),
    }


def _auc(x: Sequence[float], y: Sequence[float]) -> float:
    return float(sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1)))


def summarize(records: Sequence) -> dict:
    """`faithfulness.json`: {"methods": {name: {"pointing_game", "deletion_auc", "insertion_auc", "n"}}} over the
    records' `faithfulness` entries (`n`: crops measured; a metric is None where no crop had it, e.g. the
    pointing game on data without ground-truth regions)."""
    per: dict[str, dict[str, list]] = {}
    for r in records:
        for name, f in (r.faithfulness or {}).items():
            d = per.setdefault(name, {k: [] for k in (*FIELDS, "n")})
            d["n"].append(1)
            for k in FIELDS:
                if f.get(k) is not None:
                    d[k].append(float(f[k]))
    methods = {
        name: {**{k: (sum(v[k]) / len(v[k]) if v[k] else None) for k in FIELDS}, "n": len(v["n"])}
        for name, v in per.items()
    }
    return {"methods": methods}


def table(summary: dict) -> str:
    """`faithfulness.json` as a markdown table, the random baseline last."""
    methods = summary.get("methods", {})
    order = [m for m in methods if m != "random"] + (["random"] if "random" in methods else [])
    lines = [
        "| method | pointing game | deletion AUC (lower: better) | insertion AUC (higher: better) | crops |",
        "|---|---|---|---|---|",
    ]
    for m in order:
        v = methods[m]
        cells = ["-" if v.get(k) is None else f"{v[k]:.3f}" for k in FIELDS]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {v.get('n', 0)} |")
    return "\n".join(lines)


def agreement(records: Sequence, target: str = "box", methods: Sequence[str] | None = None) -> dict:
    """Where the map methods agree, over the crops every one of them explained for `target`:
    `same_top[a|b]` share of crops whose hottest cells coincide, `rank_corr[a|b]` mean Spearman correlation of
    the two maps, `top_in_box[m]` share whose hottest cell lies in the box the model chose, `top_in_landmark[m]`
    in the named landmark (crops with one), `n` crops."""
    for r in records if methods is not None else ():  # a method asked for by name must have run: say why not
        for m in methods:
            if (res := r.result(m, target)) is not None and not res.available:
                raise ValueError(f"agreement: {m} is not available on {short(r.sample_id)}: {res.reason}")
    recs = [r for r in records if methods is None or all(r.map(m, target) is not None for m in methods)]
    names = (
        list(methods)
        if methods is not None
        else sorted({m for r in recs for m in r.methods if r.map(m, target) is not None})
    )
    recs = [r for r in recs if all(r.map(m, target) is not None for m in names)]
    out: dict = {
        "n": len(recs),
        "methods": names,
        "same_top": {},
        "rank_corr": {},
        "top_in_box": {},
        "top_in_landmark": {},
    }
    if not recs:
        return out
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            tops = [int(r.map(a, target).argmax()) == int(r.map(b, target).argmax()) for r in recs]
            out["same_top"][f"{a}|{b}"] = sum(tops) / len(tops)
            out["rank_corr"][f"{a}|{b}"] = sum(_spearman(r.map(a, target), r.map(b, target)) for r in recs) / len(recs)
    for m in names:
        boxed = [r for r in recs if r.box is not None]
        out["top_in_box"][m] = (
            sum(pointing_game(r.map(m, target), r.box, r.cell) for r in boxed) / len(boxed) if boxed else None
        )
        marked = [r for r in recs if r.landmark is not None]
        out["top_in_landmark"][m] = (
            sum(pointing_game(r.map(m, target), r.landmark, r.cell) for r in marked) / len(marked) if marked else None
        )
    return out


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.reshape(-1).argsort().argsort().double()
    rb = b.reshape(-1).argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den else 0.0


def disagreeing(records: Sequence, a: str, b: str, target: str = "box") -> list:
    """The crops (with a landmark) where method `a`'s hottest cell is off the landmark while `b`'s is on it."""
    return [
        r
        for r in records
        if r.landmark is not None
        and r.map(a, target) is not None
        and r.map(b, target) is not None
        and not pointing_game(r.map(a, target), r.landmark, r.cell)
        and pointing_game(r.map(b, target), r.landmark, r.cell)
    ]
