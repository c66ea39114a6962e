"""Where we run (CI, Colab, Binder, tests), seeding, display set-up and asset paths."""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

import numpy as np
import torch

from .settings import short

IN_COLAB = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
IN_BINDER = "BINDER_SERVICE_HOST" in os.environ or "BINDER_REQUEST" in os.environ
IN_CI = bool(os.environ.get("CI")) or bool(os.environ.get("GITHUB_ACTIONS"))
IN_TEST = "PYTEST_CURRENT_TEST" in os.environ or bool(os.environ.get("R3LAB_TEST"))

REPO_ROOT = Path(__file__).resolve().parents[2]


def installed_share() -> Path:
    """Where a wheel put the course (lessons, solutions, shipped checkpoints): `<prefix>/share/r3lab`, or the user
    scheme's for a `pip install --user`; the first that exists (else the prefix's)."""
    import sysconfig

    schemes = [s for s in (sysconfig.get_default_scheme(), f"{os.name}_user") if s in sysconfig.get_scheme_names()]
    found = [Path(sysconfig.get_path("data", scheme)) / "share" / "r3lab" for scheme in schemes]
    return next((p for p in found if p.is_dir()), found[0])


def _course_dir(name: str) -> Path:
    """A clone's own folder (`notebooks`, `assets`) beside the package, else the installed wheel's copy."""
    own = REPO_ROOT / name
    return own if own.is_dir() or not (installed_share() / name).is_dir() else installed_share() / name


ASSETS = _course_dir("assets")
NOTEBOOKS = _course_dir("notebooks")
SHIPPED = ASSETS / "checkpoints"  # the checkpoints `r3lab recipe --ship assets/checkpoints` wrote, and their card


def assets_dir() -> Path:
    """The `assets/` folder (shipped checkpoints and their card): a clone's, else the installed wheel's."""
    if not ASSETS.is_dir():
        raise FileNotFoundError(
            f"r3lab's assets folder was not found at {ASSETS} nor under {installed_share()}: install r3lab from its "
            "wheel (pip install 'r3lab[course]') or from a clone (pip install -e '.[course]')."
        )
    return ASSETS


def seed_everything(seed: int) -> int:
    """Seed python, numpy and torch; returns the seed so notebooks can print it."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return seed


def configure_threads(n: int | None = None) -> int:
    """Torch CPU threads: `n` if given, OMP_NUM_THREADS if set, else 1 on a machine without CUDA.

    r3-tiny is overhead-bound: on a 2-core machine with one core busy elsewhere, two OpenMP threads
    spin-wait on each other and a training step took 3.8 s instead of 61 ms (benchmarks/model.py).
    """
    if n is None:
        env_n = os.environ.get("OMP_NUM_THREADS", "")
        n = (
            int(env_n)
            if env_n.isdigit() and int(env_n) > 0
            else (torch.get_num_threads() if torch.cuda.is_available() else 1)
        )
    torch.set_num_threads(n)
    return n


def headless() -> bool:
    """True where outputs are saved rather than watched: the notebook runner (R3LAB_HEADLESS=1), CI, or no
    IPython kernel. R3LAB_WIDGETS=1 says a person (or the JupyterLab browser test) is watching live widgets."""
    if os.environ.get("R3LAB_WIDGETS", "") == "1":
        return False
    return os.environ.get("R3LAB_HEADLESS", "") == "1" or IN_CI or not _in_ipython()


def pick_device(device: str = "auto") -> torch.device:
    """The torch device a lesson runs on: "auto" is CUDA when torch sees a GPU, else the CPU; "cpu", "cuda",
    "cuda:N" and "mps" are taken as asked, and refused with the reason when the machine lacks them."""
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"device={short(device)} is not a device ({e}); use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={short(device)}, but this torch ({torch.__version__}) sees no CUDA GPU; "
            "use device='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={short(device)}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={short(device)}, but MPS is not available here; use device='auto' or 'cpu'")
    return dev


def progress_disabled(progress: bool | None = None) -> bool:
    """Whether tqdm bars are off: `progress` when the caller says (True: shown); else off in CI logs unless
    TQDM_DISABLE=0 asks for them."""
    if progress is not None:
        return not progress
    flag = os.environ.get("TQDM_DISABLE")
    if flag is not None:
        return flag not in ("", "0")
    return IN_CI or os.environ.get("R3LAB_HEADLESS", "") == "1"


def configure_display(plotly_renderer: str | None = None, matplotlib_backend: str | None = None) -> dict:
    """Choose the plotly renderer and matplotlib backend explicitly (headless runs need both).

    In a kernel: inline matplotlib and plotly's `plotly_mimetype` renderer (the figure as JSON, drawn by
    JupyterLab's plotly extension: no plotly.js copied into the notebook); Colab: `colab`. Elsewhere: `agg`
    and `json`. PLOTLY_RENDERER in the environment wins over the default. Headless notebook runs replace
    the plotly renderer with `r3lab.viz.static`'s (a PNG beside the JSON; see r3lab.course.setup).
    """
    import matplotlib
    import plotly.io as pio

    kernel = _in_ipython()
    backend = matplotlib_backend or ("module://matplotlib_inline.backend_inline" if kernel else "agg")
    matplotlib.use(backend, force=True)
    if kernel and "inline" in backend:  # register the PNG formatter, so a returned Figure displays as an image
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import configure_inline_support

        configure_inline_support(get_ipython(), backend)
    renderer = (
        plotly_renderer
        or os.environ.get("PLOTLY_RENDERER")
        or ("colab" if IN_COLAB else "plotly_mimetype" if kernel else "json")
    )
    pio.renderers.default = renderer
    return {"plotly_renderer": renderer, "matplotlib_backend": matplotlib.get_backend()}


def describe(device: torch.device | None = None) -> dict:
    """A one-line-per-fact summary of the machine, for the top of every notebook."""
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device if device is not None else pick_device("auto")),
        "threads": torch.get_num_threads(),
        "ci": IN_CI,
        "colab": IN_COLAB,
        "binder": IN_BINDER,
    }
    return info


def in_kernel() -> bool:
    """True inside an IPython kernel (a notebook, papermill), False in a script or the CLI."""
    return _in_ipython()


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
