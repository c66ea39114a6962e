"""Run the notebook series headlessly with papermill: validated parameters, timeouts, an HTML index.

    r3lab notebooks run [00 10 ...] [-p key value ...] [--profile smoke|default] [--out runs/x]

Parameters are checked against `papermill.inspect_notebook` before anything runs: unknown or mistyped names are
refused with the notebook's real parameters (papermill itself only logs them), and numbers outside the range their
help comment states (`# optimizer steps, 1..2000`) are refused with that range. Smoke mode runs a lesson at its own
small sizes (`r3lab.course.SMOKE`); a given parameter it replaces is named.
Everything a run makes stays in its folder: `<out>/<name>/<name>.ipynb` (executed), `<name>.html` (nbconvert's
rendering), `figures/`, and `<out>/index.html` + `results.json` (wall and CPU seconds, the machine). Each executed
notebook is signed (`r3lab.course.trust`): the site shows a signed notebook's outputs as they are and sanitises
everything else. The kernel runs with R3LAB_HEADLESS=1: figures are saved as images, the step player as a strip of
frames, no progress bars. A notebook records its key numbers with `r3lab.course.report(name=value, ...)`; the index
shows each one's time and headline numbers and flags any file over `MAX_BYTES`.
The parameters' checks live in `r3lab.course.parameters`, the index in `r3lab.course.run_index`; their names are
importable from here too.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import sys
import time
from pathlib import Path

from ..core.env import NOTEBOOKS
from .lesson import REPORT_MIME, SMOKE
from .parameters import DEFAULT_ONLY, ParameterError, bounds, check_parameters, declared, parse_value, smoke_replaces
from .run_index import HEADLINES, MAX_BYTES, Result, headline, load_results, refresh_index, write_index

__all__ = [  # the runner's face: its parameters (.parameters) and index (.run_index) too
    "KERNEL",
    "PROFILES",
    "HEADLESS_ENV",
    "SMOKE",
    "find_notebooks",
    "run_notebook",
    "run_series",
    "collect",
    "export_page",
    "machine",
    "ensure_kernel",
    "DEFAULT_ONLY",
    "ParameterError",
    "bounds",
    "check_parameters",
    "declared",
    "parse_value",
    "smoke_replaces",
    "HEADLINES",
    "MAX_BYTES",
    "Result",
    "headline",
    "load_results",
    "refresh_index",
    "write_index",
]

KERNEL = "r3lab"
PROFILES = {"smoke": {"smoke": True}, "default": {}}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEADLESS_ENV = {"R3LAB_HEADLESS": "1", "TQDM_DISABLE": "1"}  # given to the kernel: saved, not watched
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]  # ipykernel warns at every start that local sockets are unencrypted


def find_notebooks(names: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """Notebooks by number prefix or name ('00', '00_build_vlir', '00_build_vlir.ipynb'); all if none."""
    folder = folder or NOTEBOOKS
    every = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    out = []
    for n in names:
        hits = [p for p in every if p.name == n or p.stem == n or p.name.startswith(n + "_")]
        if len(hits) != 1:
            known = ", ".join(p.stem for p in every)
            raise FileNotFoundError(f"no single notebook matches {n!r}; known: {known}")
        out.append(hits[0])
    return out


def run_notebook(path: Path, out_dir: Path, params: dict, timeout: int = 600, kernel: str = KERNEL) -> Result:
    """Execute one notebook into out_dir/<name>/ (its working directory), collect figures and numbers."""
    import nbformat
    import papermill

    work = out_dir / path.stem
    work.mkdir(parents=True, exist_ok=True)
    out_nb = work / path.name
    cpu0 = _cpu()
    t0 = time.perf_counter()
    error = ""
    try:
        papermill.execute_notebook(
            str(path),
            str(out_nb),
            parameters=params,
            kernel_name=kernel,
            execution_timeout=timeout,
            cwd=str(work),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            extra_arguments=KERNEL_ARGS,
        )
    except papermill.PapermillExecutionError as e:
        error = _ANSI.sub("", f"cell {e.exec_count}: {e.ename}: {e.evalue}\n" + "\n".join(e.traceback[-6:]))
    except Exception as e:  # kernel died, timeout, ...
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    numbers, figures, page = {}, [], None
    if out_nb.exists():
        nb = nbformat.read(str(out_nb), as_version=4)
        numbers, figures = collect(nb, work / "figures")
        page = export_page(nb, work / f"{path.stem}.html")
        from .trust import sign

        sign(out_nb)  # executed here: the site may show its outputs as they are
    oversize = [
        f"{f.name} ({f.stat().st_size / 1e6:.1f} MB)"
        for f in (out_nb, page)
        if f is not None and f.exists() and f.stat().st_size > MAX_BYTES
    ]
    return Result(path.stem, not error, seconds, out_nb, numbers, figures, error, params, page, oversize, cpu)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the kernel counts once papermill has reaped it)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def machine() -> dict:
    """What a run's times depend on: CPUs, the load when it started, OpenMP threads, and the GPU torch sees."""
    gpu = None
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # no torch or a broken driver: a CPU run
        pass
    return {
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "gpu": gpu,
    }


def collect(nb, fig_dir: Path) -> tuple[dict, list[Path]]:
    """The numbers `report` recorded and every PNG output (written to fig_dir) of an executed notebook."""
    numbers, figures = {}, []
    for stale in fig_dir.glob("cell*.png") if fig_dir.is_dir() else []:  # an earlier run's figures (other cell numbers)
        stale.unlink()
    for ci, cell in enumerate(nb.cells):
        for oi, o in enumerate(cell.get("outputs", [])):
            data = o.get("data", {})
            if REPORT_MIME in data:
                got = data[REPORT_MIME]
                numbers.update({k: got["values"][k] for k in got["order"]})
            png = data.get("image/png")
            if png:
                fig_dir.mkdir(exist_ok=True)
                f = fig_dir / f"cell{ci:02d}_{oi}.png"
                f.write_bytes(base64.b64decode(png))
                figures.append(f)
    return numbers, figures


def export_page(nb, path: Path) -> Path | None:
    """nbconvert's HTML rendering of `nb` (lab template, images inline) at `path`; None if nbconvert fails."""
    try:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    except Exception as e:  # a broken page must not hide the run's result
        print(f"[r3lab]   no HTML page for {path.name}: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    path.write_text(body, encoding="utf-8")
    return path


@contextlib.contextmanager
def _environ(values: dict):
    """os.environ with `values` set (the kernel papermill starts inherits them), restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ensure_kernel(name: str = KERNEL) -> None:
    """Register this interpreter as Jupyter kernel `name` if no such kernel exists."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        print(f"registering this Python ({sys.executable}) as Jupyter kernel {name!r}", file=sys.stderr)
        install(kernel_name=name, display_name=f"{name} (Python 3)", prefix=sys.prefix)


def run_series(
    names=None,
    params: dict | None = None,
    profile: str = "default",
    out: str | os.PathLike = "runs/latest",
    timeout: int = 600,
    kernel: str = KERNEL,
    stop_on_failure: bool = False,
    folder: Path | None = None,
) -> list[Result]:
    """Validate every notebook's parameters first, then run them in order and write the index page."""
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if type(timeout) is not int or timeout < 1:
        raise ParameterError(f"timeout (--timeout) must be a whole number of seconds >= 1, got {timeout!r}")
    paths = find_notebooks(names, folder or NOTEBOOKS)
    params = dict(params or {})
    plans = []
    for p in paths:
        decl = declared(p)
        mine = {k: v for k, v in PROFILES[profile].items() if k in decl}
        given = {k: v for k, v in params.items() if k in decl or len(paths) == 1}
        mine.update(given)
        checked = check_parameters(p, mine)
        replaced = smoke_replaces(p, {k: checked[k] for k in given if k != "smoke"}) if checked.get("smoke") else {}
        plans.append((p, checked, replaced))
    unused = [k for k in params if not any(k in declared(p) for p in paths)]
    if unused:
        raise ParameterError(
            f"no selected notebook declares {', '.join(map(repr, unused))}. "
            + " ".join(f"{p.stem}: {', '.join(declared(p))}." for p in paths)
        )
    ensure_kernel(kernel)
    from ..viz.static import figure_backend

    print(f"[r3lab] plotly figures as PNG: {figure_backend()}", flush=True)
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = machine()
    results = []
    for p, prm, replaced in plans:
        print(f"[r3lab] running {p.name} {prm or ''}", flush=True)
        if replaced:  # smoke mode runs the lesson's own small sizes: never silently in place of a given value
            print(
                "[r3lab]   smoke mode replaces the given "
                + ", ".join(f"{k}={g!r} (it runs {v!r})" for k, (g, v) in replaced.items()),
                flush=True,
            )
        with _environ(HEADLESS_ENV):
            r = run_notebook(p, out_dir, prm, timeout, kernel)
        r.replaced = replaced
        results.append(r)
        cpu = f" (CPU {r.cpu_seconds:.0f} s)" if r.cpu_seconds is not None else ""
        print(f"[r3lab]   {'passed' if r.ok else 'FAILED'} in {r.seconds:.1f} s{cpu} {r.numbers or ''}", flush=True)
        if not r.ok:
            print(f"[r3lab]   {r.error}", file=sys.stderr, flush=True)
            if stop_on_failure:
                break
        write_index(results, out_dir, f"r3lab notebooks ({profile})", facts)
    return results
