"""A step player: a slider through the pieces of a trajectory (text so far, current box, zoomed crop,
attention of that step's tokens), as ipywidgets over the pure `r3lab.viz.mpl.plot_step`.

Headless runs (the notebook runner, CI, no kernel) get a static strip instead: executed notebooks keep
widget views without their state, which reopen as "model not found" (jupyter/nbconvert#751), so there
the player displays one PNG of its key frames (the question, each zoomed crop, the answer), which
untrusted JupyterLab and nbconvert HTML both show; `r3lab.viz.export_html` writes the page with a
slider. `R3LAB_WIDGETS=1` forces live widgets even when CI is set (browser tests of JupyterLab).
"""

from __future__ import annotations

import base64
import html
import io
from functools import lru_cache
from typing import TYPE_CHECKING

from ..core import env
from ..core.settings import short
from ..core.trajectory import IMAGE, Trajectory
from .mpl import plot_step
from .steps import trajectory_steps

if TYPE_CHECKING:
    from ..explain.maps import AttentionMaps


def headless() -> bool:
    """True where a live widget could not be shown or kept: the notebook runner, CI, or no IPython kernel."""
    return env.headless()


def _png(fig, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class StepPlayer:
    """Slider through the steps of `traj`. `.widget` is the ipywidgets box (None when static);
    `.figure(k)` the matplotlib Figure of step k; displays itself in a notebook."""

    def __init__(
        self,
        traj: Trajectory,
        maps: "AttentionMaps | None" = None,
        static: bool | None = None,
        start: int | None = None,
        dpi: int = 80,
        **agg,
    ):
        self.traj, self.maps, self.agg, self.dpi = traj, maps, agg, dpi
        self.steps = trajectory_steps(traj)
        self.static = headless() if static is None else bool(static)
        self.step = len(self.steps) - 1 if start is None else int(start)
        if not 0 <= self.step < len(self.steps):
            raise ValueError(f"start={short(start)} out of range: the trajectory has {len(self.steps)} steps")
        self._render = lru_cache(maxsize=64)(self._render_png)
        self.widget = None if self.static else self._build()

    def figure(self, k: int):
        return plot_step(self.traj, k, maps=self.maps, **self.agg)

    def _render_png(self, k: int) -> bytes:
        return _png(self.figure(k), self.dpi)

    def text_html(self, k: int) -> str:
        """The text so far, the current step's piece highlighted (escaped)."""
        parts = [f"<b>Q:</b> {html.escape(self.traj.question or '')}<br>"]
        for s in self.steps[1 : k + 1]:
            body = f"[zoomed crop {s.crop}]" if s.kind == IMAGE else html.escape(s.text.replace("<|im_end|>", ""))
            style = "background:#fff3b0" if s.index == k else ""
            parts.append(f'<span class="r3-step" data-step="{s.index}" style="{style}">{body}</span>')
        return (
            '<div class="r3-text" style="font-family:monospace;white-space:pre-wrap;max-width:900px">'
            + "".join(parts)
            + "</div>"
        )

    def _build(self):
        import ipywidgets as w  # optional: the notebooks extra installs it

        n = len(self.steps)
        self.slider = w.IntSlider(value=self.step, min=0, max=n - 1, description="step", continuous_update=False)
        self.play = w.Play(value=self.step, min=0, max=n - 1, interval=1500, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.image = w.Image(value=self._render(self.step), format="png")
        self.text = w.HTML(value=self.text_html(self.step))
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        box = w.VBox([w.HBox([self.play, self.slider]), self.image, self.text])
        box.add_class("r3lab-step-player")
        return box

    def show(self, k: int) -> None:
        """Go to step k (updates the widget when live)."""
        if not 0 <= k < len(self.steps):
            raise ValueError(f"step {short(k)} out of range 0..{len(self.steps) - 1}")
        self.step = k
        if self.widget is not None:
            if self.slider.value != k:
                self.slider.value = k  # fires show() again, which then finds nothing to change
            self.image.value = self._render(k)
            self.text.value = self.text_html(k)

    def key_frames(self, most: int = 4) -> list[int]:
        """The steps a static strip shows: the question, each zoomed crop, the last step (at most `most`)."""
        if most < 1:
            raise ValueError(f"most={short(most)}: a strip needs at least one frame")
        picks = [0] + [s.index for s in self.steps if s.kind == IMAGE] + [len(self.steps) - 1]
        picks = list(dict.fromkeys(picks))
        if len(picks) > most:  # evenly spaced over them, the first and the last kept
            picks = [picks[-1]] if most == 1 else [picks[round(i * (len(picks) - 1) / (most - 1))] for i in range(most)]
        return picks

    def strip_png(self, most: int = 4) -> bytes:
        """One PNG of the key frames stacked top to bottom (what headless output shows)."""
        from PIL import Image

        frames = [Image.open(io.BytesIO(self._render(k))).convert("RGB") for k in self.key_frames(most)]
        width = max(f.width for f in frames)
        strip = Image.new("RGB", (width, sum(f.height for f in frames)), "white")
        y = 0
        for f in frames:
            strip.paste(f, (0, y))
            y += f.height
        buf = io.BytesIO()
        strip.save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    def static_bundle(self) -> dict:
        """What headless output holds: a PNG strip of the key frames and a line of text (no HTML, no script:
        untrusted JupyterLab would strip them)."""
        frames = ", ".join(map(str, self.key_frames()))
        return {
            "image/png": base64.b64encode(self.strip_png()).decode(),
            "text/plain": f"{self!r}: frames {frames} (run the notebook for the slider)",
        }

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self.widget is None:
            return self.static_bundle()
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data.setdefault("text/plain", repr(self))
        return bundle

    def __repr__(self) -> str:
        mode = "static" if self.widget is None else "widget"
        return f"StepPlayer({self.traj.sample_id or 'trajectory'}, {len(self.steps)} steps, step {self.step}, {mode})"


def step_player(traj: Trajectory, maps: "AttentionMaps | None" = None, static: bool | None = None, **kw) -> StepPlayer:
    """A StepPlayer for `traj` (live ipywidgets in a notebook, static HTML + PNG when headless)."""
    return StepPlayer(traj, maps=maps, static=static, **kw)
