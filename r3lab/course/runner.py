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
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import os
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.env import NOTEBOOKS
from .lesson import REPORT_MIME, SMOKE

KERNEL = "r3lab"
PROFILES = {"smoke": {"smoke": True}, "default": {}}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TYPES = {"bool": bool, "int": int, "float": float, "str": str}
MAX_BYTES = 2_000_000  # an executed notebook or its page above this is flagged (and fails the tests)
HEADLESS_ENV = {"R3LAB_HEADLESS": "1", "TQDM_DISABLE": "1"}  # given to the kernel: saved, not watched
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]  # ipykernel warns at every start that local sockets are unencrypted
# lesson -> its headline: (before, after) pairs shown first on the index page
HEADLINES = {
    "20_sft": [("read_one_before", "read_one_after"), ("crop_iou_before", "crop_iou_after")],
    "30_rgrpo": [("read_one_before", "read_one_after"), ("held_out_reward_before", "held_out_reward_after")],
}


class ParameterError(ValueError):
    """A parameter a notebook does not declare, of the wrong type, or outside its stated range."""


_RANGE = re.compile(r"(-?[\d.]+(?:e-?\d+)?)\.\.(-?[\d.]+(?:e-?\d+)?)\s*$")
DEFAULT_ONLY = "(default mode only)"  # a help comment's mark: smoke mode does not use this parameter


def bounds(help_text: str) -> tuple[float, float] | None:
    """The range a parameter's help comment ends with (`# optimizer steps, 1..2000`), or None."""
    m = _RANGE.search(help_text or "")
    return (float(m[1]), float(m[2])) if m else None


def smoke_replaces(path: Path, given: dict) -> dict:
    """The given parameters smoke mode does not run with: {name: (given, what smoke runs instead)} (the lesson's
    sizes in `SMOKE`, and parameters marked "(default mode only)")."""
    decl = declared(path)
    small = SMOKE.get(path.stem, {})
    out = {}
    for name, value in given.items():
        if name in small and small[name] != value:
            out[name] = (value, small[name])
        elif DEFAULT_ONLY in (decl.get(name) or {}).get("help", ""):
            out[name] = (value, "not used in smoke mode")
    return out


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


def parse_value(text: str):
    """Like `papermill -p`: True/False/None, ints and floats become Python values, the rest strings."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def declared(path: Path) -> dict:
    import papermill

    return papermill.inspect_notebook(str(path))


def check_parameters(path: Path, params: dict) -> dict:
    """Refuse names the notebook does not declare and values of the wrong type; returns coerced values."""
    decl = declared(path)
    real = ", ".join(f"{n}: {d['inferred_type_name']} = {d['default']}" for n, d in decl.items())
    out = {}
    for name, value in params.items():
        if name not in decl:
            raise ParameterError(f"{path.name} has no parameter {name!r}. Its parameters are: {real}")
        want = _TYPES.get(decl[name]["inferred_type_name"])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is str and value is not None and not isinstance(value, str):
            value = str(value)
        if want is not None and not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ParameterError(
                f"{path.name}: parameter {name!r} must be {want.__name__}, got {value!r}. Its parameters are: {real}"
            )
        if want is float and not math.isfinite(value):  # papermill types "nan" as a float; no lesson takes one
            raise ParameterError(f"{path.name}: parameter {name!r} must be a finite number, got {value!r}")
        span = bounds(decl[name].get("help", "")) if want in (int, float) else None
        if span is not None and not span[0] <= value <= span[1]:
            lo, hi = (int(v) if want is int else v for v in span)
            raise ParameterError(
                f"{path.name}: parameter {name!r} must be within {lo}..{hi} ({decl[name]['help']}), got {value!r}"
            )
        out[name] = value
    return out


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    output: Path
    numbers: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    error: str = ""
    parameters: dict = field(default_factory=dict)
    page: Path | None = None  # nbconvert's HTML rendering of the executed notebook
    oversize: list[str] = field(default_factory=list)  # files above MAX_BYTES, "name (size)"
    cpu_seconds: float | None = None  # user + system seconds of the kernel (and of this process meanwhile)
    replaced: dict = field(default_factory=dict)  # given parameters smoke mode ran without: {name: (given, ran)}


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


def headline(r: Result) -> list[str]:
    """The notebook's headline as "name: before → after" lines (its HEADLINES pairs found in its numbers)."""
    out = []
    for a, b in HEADLINES.get(r.name, []):
        if a in r.numbers and b in r.numbers:
            name = os.path.commonprefix([a, b]).rstrip("_") or a
            out.append(f"{name}: {_num(r.numbers[a])} → {_num(r.numbers[b])}")
    return out


def _num(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_index(results: list[Result], out_dir: Path, title: str, facts: dict | None = None) -> Path:
    """`out_dir/index.html` (one row per notebook: its page, time, headline and key numbers, figures) and
    `out_dir/results.json`."""
    rows = []
    for r in results:
        rel = lambda f: html.escape(str(f.relative_to(out_dir)))  # noqa: E731
        pairs = [f"{html.escape(str(k))} = {html.escape(_num(v))}" for k, v in r.numbers.items()]
        head = "".join(f"<b>{html.escape(h)}</b><br>" for h in headline(r)) or "<br>".join(pairs[:4])
        nums = head + (
            f"<details><summary>all {len(pairs)}</summary>{'<br>'.join(pairs)}</details>"
            if len(pairs) > 4 or headline(r)
            else ""
        )
        figs = " ".join(f'<a href="{rel(f)}"><img src="{rel(f)}" height="60"></a>' for f in r.figures[:4])
        status = "passed" if r.ok else f"FAILED<pre>{html.escape(r.error)}</pre>"
        if r.replaced:
            status += (
                "<br><small>smoke mode replaced "
                + html.escape(", ".join(f"{k}={g!r} (ran: {v})" for k, (g, v) in r.replaced.items()))
                + "</small>"
            )
        if r.oversize:
            status += (
                f'<br><span class="bad">over {MAX_BYTES / 1e6:.0f} MB: {html.escape(", ".join(r.oversize))}</span>'
            )
        name = f'<a href="{rel(r.page)}">{html.escape(r.name)}</a>' if r.page else html.escape(r.name)
        name += f' <small>(<a href="{rel(r.output)}">ipynb</a>)</small>' if r.output.exists() else ""
        solution = out_dir / "solutions" / r.name / f"{r.name}.html"  # the answer key, when it ran into this folder
        name += f' <small>(<a href="{rel(solution)}">solution</a>)</small>' if solution.is_file() else ""
        cpu = f"<br><small>CPU {r.cpu_seconds:.0f} s</small>" if r.cpu_seconds else ""
        rows.append(
            f'<tr><td>{name}</td><td class="{"ok" if r.ok else "bad"}">{status}</td>'
            f"<td>{r.seconds:.1f} s{cpu}</td><td>{nums}</td><td>{figs}</td></tr>"
        )
    total = sum(r.seconds for r in results)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border-bottom:1px solid #ddd;padding:6px;vertical-align:top}}\
td:nth-child(3){{white-space:nowrap}}
.ok{{color:#070}}.bad{{color:#b00}}pre{{white-space:pre-wrap;max-width:60em}}</style></head><body>
<h1>{html.escape(title)}</h1><p>{sum(r.ok for r in results)}/{len(results)} notebooks passed in {total:.0f} s
({total / 60:.1f} min).</p>
<table><tr><th>notebook</th><th>status</th><th>time</th><th>headline and key numbers</th><th>figures</th></tr>
{"".join(rows)}</table></body></html>"""
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "results.json").write_text(
        json.dumps(
            [
                {
                    "name": r.name,
                    "ok": r.ok,
                    "seconds": round(r.seconds, 2),
                    "numbers": r.numbers,
                    "error": r.error,
                    "cpu_seconds": None if r.cpu_seconds is None else round(r.cpu_seconds, 2),
                    "machine": facts or {},
                    "replaced": {k: list(v) for k, v in r.replaced.items()},
                    "parameters": r.parameters,
                    "headline": headline(r),
                    "page": str(r.page.relative_to(out_dir)) if r.page else None,
                    "oversize": r.oversize,
                }
                for r in results
            ],
            indent=2,
        )
    )
    return path


def load_results(out_dir: Path) -> tuple[list[Result], dict]:
    """The Results a run folder's results.json holds (and its machine's facts), to write its index again."""
    rows = json.loads((out_dir / "results.json").read_text())
    out = []
    for r in rows:
        work = out_dir / r["name"]
        out.append(
            Result(
                r["name"],
                r["ok"],
                r["seconds"],
                work / f"{r['name']}.ipynb",
                r.get("numbers") or {},
                sorted((work / "figures").glob("cell*.png")),
                r.get("error", ""),
                r.get("parameters") or {},
                out_dir / r["page"] if r.get("page") else None,
                r.get("oversize") or [],
                r.get("cpu_seconds"),
                {k: tuple(v) for k, v in (r.get("replaced") or {}).items()},
            )
        )
    return out, (rows[0].get("machine") or {}) if rows else {}


def refresh_index(out_dir: Path) -> Path | None:
    """Write `out_dir/index.html` again from its results.json (after its solutions ran, so it links them)."""
    out_dir = Path(out_dir).resolve()
    if not (out_dir / "results.json").is_file():
        return None
    results, facts = load_results(out_dir)
    profile = "smoke" if any(r.parameters.get("smoke") for r in results) else "default"
    return write_index(results, out_dir, f"r3lab notebooks ({profile})", facts)


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
