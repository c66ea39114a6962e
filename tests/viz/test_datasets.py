"""The zoom figure: the coarse view of a landmark, blown up, beside the crop the environment returns."""

import numpy as np
import pytest

import r3lab
from r3lab.viz.datasets import plot_zoom_reveals


def test_the_zoom_shows_what_the_coarse_view_averages_away():
    view = r3lab.ViewConfig(max_pixels=112 * 112)
    samples = r3lab.build_samples(6, 0, ["read_one", "control"], view=view, progress=False)
    fig = plot_zoom_reveals(samples, view)  # control questions have no region: left out
    reads = [s for s in samples if s.regions]
    assert len(fig.axes) == 2 * len(reads)
    coarse, zoom = (_inside_the_detail_box(ax) for ax in fig.axes[:2])
    assert coarse.shape == zoom.shape  # the same box at the same size: only the resolution differs
    assert zoom.std() > 3 * coarse.std()  # the grating's stripes survive only in the zoom
    assert "zoomed crop" in fig.axes[1].get_title() and repr(reads[0].answers[0]) in fig.axes[0].get_title()
    wide = plot_zoom_reveals(reads, view, across=True)
    assert len(wide.axes) == 2 * len(reads)
    with pytest.raises(ValueError, match="control"):
        plot_zoom_reveals([s for s in samples if not s.regions], view)


def _inside_the_detail_box(ax) -> np.ndarray:
    """The grey levels inside the red outline of the detail (3 px in from it)."""
    (box,) = ax.patches
    x, y = box.get_xy()
    pic = np.asarray(ax.images[0].get_array(), float).mean(-1)
    return pic[int(y) + 3 : int(y + box.get_height()) - 3, int(x) + 3 : int(x + box.get_width()) - 3]
