"""Figures of VLIR data: a dataset's statistics, and samples the way the lesson needs them.

`plot_sample` shows the original with its ground-truth regions and crop boxes, the coarse view
the model gets, and each zoomed crop. Figures are returned, never shown.
"""

from __future__ import annotations

import textwrap

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ..core.regions import Frame, ViewConfig, crop_and_zoom
from ..core.trajectory import IMAGE, MODEL
from ..data.stats import DatasetStats


def plot_stats(stats: DatasetStats, fig=None):
    """Three panels: samples per family split by their crops per sample, crop box sides, answers per family."""
    fig = fig or Figure(figsize=(12, 6.5), layout="constrained")
    ax = fig.subplot_mosaic([["family", "answers"], ["box", "answers"]], width_ratios=[1.2, 1])
    fams = sorted(stats.families)
    bottom = [0] * len(fams)
    for k in sorted({k for c in stats.crops.values() for k in c}):  # one stacked bar per family: its crops per sample
        counts = [stats.crops[f][k] for f in fams]
        ax["family"].bar(fams, counts, bottom=bottom, label=f"{k} crop{'' if k == 1 else 's'}")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax["family"].set(title="samples per family, by crops per sample", ylabel="samples")
    if stats.crops:  # the legend in head-room above the bars, never over them
        ax["family"].set_ylim(0, 1.3 * max(bottom))
        ax["family"].legend(fontsize=8, loc="upper center", ncol=3)
    if stats.box_sides:
        lo, hi = int(min(min(b) for b in stats.box_sides)), int(max(max(b) for b in stats.box_sides))
        bins = range(lo, hi + 2) if hi - lo < 40 else 40
        ax["box"].hist(
            [[b[0] for b in stats.box_sides], [b[1] for b in stats.box_sides]],
            bins=bins,
            label=["width", "height"],
            align="left",
        )
        ax["box"].legend(fontsize=8)
    ax["box"].set(title="crop box sides", xlabel="side (model-input px)", ylabel="crop boxes")
    labels, rows = [], []
    for f in fams:
        for a, c in sorted(stats.answers[f].items()):
            labels.append(f"{f}: {a}")
            rows.append(c)
    ax["answers"].barh(range(len(rows)), rows, color="tab:green")
    ax["answers"].set_yticks(range(len(rows)), labels, fontsize=max(4, min(8, 400 // max(1, len(rows)))))
    ax["answers"].invert_yaxis()
    ax["answers"].set(title="answers per family (balance)", xlabel="samples")
    fig.suptitle(f"VLIR dataset: {stats.n} samples")
    return fig


def plot_sample(sample, view: ViewConfig | None = None, fig=None):
    """The original with ground truth (green: regions, red: details, blue dashed: crop boxes), the coarse
    view the model sees, and each zoomed crop; the question, the rationale and the answer as the title."""
    view = view or ViewConfig()
    im = sample.load_image()
    frame = Frame.of(im.size, view)
    boxes = [p.info.box_input for p in sample.rationale or [] if p.kind == IMAGE]
    premade = [p.image for p in sample.rationale or [] if p.kind == IMAGE]
    n = 2 + len(boxes)
    fig = fig or Figure(figsize=(3.2 * n, 4.2), layout="constrained")
    ax = fig.subplots(1, n, squeeze=False)[0]
    ax[0].imshow(im)
    for r in sample.regions:
        ax[0].add_patch(Rectangle((r[0], r[1]), r[2] - r[0], r[3] - r[1], fill=False, ec="lime", lw=1.5))
    for d in sample.details:
        ax[0].add_patch(Rectangle((d[0] - 3, d[1] - 3), d[2] - d[0] + 6, d[3] - d[1] + 6, fill=False, ec="red", lw=1))
    for b in boxes:
        x1, y1, x2, y2 = frame.to_orig(b)
        ax[0].add_patch(Rectangle((x1, y1), x2 - x1 + 1, y2 - y1 + 1, fill=False, ec="blue", lw=1, ls="--"))
    ax[0].set_title(f"original {im.width}x{im.height}", fontsize=9)
    ax[1].imshow(im.resize(frame.input_size, Image.BICUBIC), interpolation="nearest")
    ax[1].set_title(f"coarse view {frame.input_w}x{frame.input_h}", fontsize=9)
    for k, b in enumerate(boxes):
        crop = premade[k] if premade[k] is not None else crop_and_zoom(im, b, view).image
        ax[2 + k].imshow(crop, interpolation="nearest")
        ax[2 + k].set_title(f"crop {k + 1}: {[int(v) for v in b]} -> {crop.width}x{crop.height}", fontsize=9)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    text = "".join(p.text if p.kind == MODEL else " [crop] " for p in sample.rationale or [])
    text = text.replace("<|im_end|>", "")
    title = f"[{sample.family}] {sample.question}  ->  {sample.answers}\n" + "\n".join(textwrap.wrap(text, 30 * n))
    fig.suptitle(title, fontsize=9)
    return fig


def plot_samples(samples, view: ViewConfig | None = None, fig=None):
    """`plot_sample` for several samples, one row each (rows sized to the sample with most crops)."""
    samples = list(samples)
    ncol = 2 + max(sum(p.kind == IMAGE for p in s.rationale or []) for s in samples)
    fig = fig or Figure(figsize=(3.2 * ncol, 4.4 * len(samples)), layout="constrained")
    for sub, s in zip(fig.subfigures(len(samples), 1, squeeze=False)[:, 0], samples):
        plot_sample(s, view, fig=sub)
    return fig


def plot_zoom_reveals(samples, view: ViewConfig | None = None, across: bool = False, fig=None):
    """What looking again adds, one row per sample: the landmark's region as the coarse view holds it, blown up
    (nearest neighbour: every coarse pixel a visible square), beside the zoomed crop of the same box that the
    environment returns. The detail's box is outlined in both; the title is the sample's answer. The crop box is
    the reference rationale's first, else the first ground-truth region. `across`: one column per sample
    instead. Returns the Figure."""
    view = view or ViewConfig()
    samples = [s for s in samples if s.regions]
    if not samples:
        raise ValueError("plot_zoom_reveals: no sample with a ground-truth region (control questions have none)")
    n = len(samples)
    fig = fig or Figure(figsize=(2.3 * n, 4.9) if across else (5.6, 2.7 * n), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False).T if across else fig.subplots(n, 2, squeeze=False)
    for row, s in zip(axes, samples):
        im = s.load_image()
        frame = Frame.of(im.size, view)
        box = next((p.info.box_input for p in s.rationale or [] if p.kind == IMAGE), None)
        box = box or tuple(float(round(v)) for v in frame.to_input(s.regions[0]))
        crop = crop_and_zoom(im, box, view)
        coarse = im.resize(frame.input_size, Image.BICUBIC).crop(tuple(int(round(v)) for v in box))
        x1, y1, x2, y2 = crop.box_orig
        for ax, pic, name in (
            (row[0], coarse.resize(crop.image.size, Image.NEAREST), "coarse view, blown up"),
            (row[1], crop.image, f"zoomed crop ({crop.zoom:.1f}x, {crop.image.width} px)"),
        ):
            ax.imshow(pic, interpolation="nearest")
            sx, sy = pic.width / (x2 - x1 + 1), pic.height / (y2 - y1 + 1)
            for d in s.details[:1]:
                ax.add_patch(
                    Rectangle(
                        ((d[0] - x1) * sx - 2, (d[1] - y1) * sy - 2),
                        (d[2] - d[0]) * sx + 4,
                        (d[3] - d[1]) * sy + 4,
                        fill=False,
                        ec="red",
                        lw=1,
                    )
                )
            ax.set_title(f"{name}: {s.answers[0]!r}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
