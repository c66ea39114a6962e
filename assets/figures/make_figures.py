"""The README's figure: one read_one question per pattern, the coarse view of its landmark blown up beside the
zoomed crop. `python assets/figures/make_figures.py` rewrites assets/figures/look-again.png."""
from pathlib import Path

import r3lab
from r3lab.viz import plot_zoom_reveals

view = r3lab.ViewConfig(max_pixels=112 * 112)  # the lessons' coarse view
samples = r3lab.build_samples(40, 0, ["read_one"], view=view, progress=False)
one_each = list({s.answers[0]: s for s in reversed(samples)}.values())
fig = plot_zoom_reveals(sorted(one_each, key=lambda s: s.answers[0]), view, across=True)
fig.suptitle("What the model sees of a landmark (top) and what one crop shows it (bottom)", fontsize=10)
fig.savefig(Path(__file__).with_name("look-again.png"), dpi=80)
