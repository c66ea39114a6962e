"""The course's site: the executed lessons, the pages of docs/ (the instructor's kit among them) and an API
reference from the docstrings, built offline with MkDocs-Material, mkdocs-jupyter and mkdocstrings.

    r3lab notebooks site [--run runs/main] [--out site]      (`make docs`)

The lessons come from a run folder (`r3lab notebooks run --out runs/main`): each executed notebook as the
run left it, figures included, when this machine's runner executed it (`r3lab.course.trust`); any other notebook's
HTML is sanitised first (scripts, handlers and frames removed) and said so. A lesson the run lacks is taken
unexecuted from notebooks/ and said so. Lesson pages use the whole width of the window (`extra.css`).
Everything is staged in one folder (docs/ copied, the lessons, a lessons table from results.json, one
API page per room) with a generated mkdocs.yml that INHERITs the repository's, then built into `out`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ..core.env import REPO_ROOT
from .runner import NOTEBOOKS, find_notebooks
from .syllabus import COLAB_BADGE, colab_url

DOCS = REPO_ROOT / "docs"
BASE_CONFIG = REPO_ROOT / "mkdocs.yml"
# the API reference: the rooms a course user calls, in the order DEVELOPERS.md draws them
API_ROOMS = (
    "core",
    "data",
    "model",
    "engine",
    "importers",
    "train",
    "explain",
    "bench",
    "evaluation",
    "recipe",
    "audit",
    "viz",
    "course",
    "integrations",
    "testing",
)


def lesson_sources(run: Path | None, folder: Path | None = None) -> list[tuple[Path, bool]]:
    """(notebook, executed?) per lesson: `run/<name>/<name>.ipynb` where the run has it, else the source."""
    out = []
    for src in find_notebooks(None, folder or NOTEBOOKS):
        done = run / src.stem / src.name if run is not None else None
        out.append((done, True) if done is not None and done.is_file() else (src, False))
    return out


def lessons_page(sources: list[tuple[Path, bool]], run: Path | None) -> str:
    """The lessons' table: each lesson linked, its measured time and headline (from the run's results.json)."""
    results = {}
    if run is not None and (run / "results.json").is_file():
        results = {r["name"]: r for r in json.loads((run / "results.json").read_text())}
    lines = [
        "# Lessons",
        "",
        "Each lesson as its default run left it: every figure and number on these pages was produced by "
        "that run. Open the notebooks themselves in JupyterLab or Colab to change the parameters and run them "
        "again.",
        "",
        "| lesson | status | time | headline | Colab |",
        "|---|---|---|---|---|",
    ]
    for path, executed in sources:
        r = results.get(path.stem)
        status = ("passed" if r["ok"] else "**failed**") if r else ("not run" if not executed else "executed")
        time = (f"{r['seconds'] / 60:.1f} min" if r["seconds"] >= 60 else f"{r['seconds']:.0f} s") if r else "–"
        head = "; ".join(r.get("headline") or []) if r else ""
        if r and not head:
            head = ", ".join(f"{k} = {v}" for k, v in list(r["numbers"].items())[:3])
        badge = f"[![Open in Colab]({COLAB_BADGE})]({colab_url(path.stem)})"
        lines.append(f"| [{path.stem}]({path.stem}.ipynb) | {status} | {time} | {head} | {badge} |")
    ran = [results[p.stem] for p, _ in sources if p.stem in results]
    if ran:
        total = sum(r["seconds"] for r in ran) / 60
        lines += [
            "",
            f"The whole series: {total:.1f} minutes on the machine that ran it."
            if len(ran) == len(sources)
            else f"{len(ran)} of the {len(sources)} lessons ran in this folder, in {total:.1f} minutes: the "
            "series' time needs all of them (make main).",
        ]
    return "\n".join(lines) + "\n"


def place(path: Path, dest: Path, executed: bool) -> bool:
    """Copy a lesson's notebook to `dest`: unchanged when it is a source or signed by this machine's runner,
    sanitised otherwise (`r3lab.course.trust`). Returns True when it was sanitised."""
    from .trust import sanitize, signed

    if not executed or signed(path):
        shutil.copy2(path, dest)
        return False
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    n = sanitize(nb)
    nbformat.write(nb, str(dest))
    print(
        f"[r3lab] site: {path} was not executed by this machine's runner: its HTML outputs and markdown were "
        f"sanitised ({n} changed)",
        file=sys.stderr,
    )
    return True


def api_pages(rooms=API_ROOMS) -> dict[str, str]:
    """One markdown page per room: a mkdocstrings block for each of its modules (the lazy faces list names
    only at run time, so the modules are documented where the names live)."""
    pkg = REPO_ROOT / "r3lab"
    pages = {}
    for room in rooms:
        mods = sorted(p.stem for p in (pkg / room).glob("*.py") if p.stem not in ("__init__", "__main__"))
        body = [f"# r3lab.{room}", "", f"::: r3lab.{room}", "    options:", "      members: false", ""]
        for m in mods:
            body += [f"::: r3lab.{room}.{m}", "    options:", "      heading_level: 2", ""]
        pages[room] = "\n".join(body)
    return pages


def stage(out: Path, run: Path | None, stage_dir: Path, rooms=API_ROOMS, folder: Path | None = None) -> Path:
    """Write the site's sources into `stage_dir` and its mkdocs.yml; returns that config's path."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(DOCS, stage_dir)
    lessons = stage_dir / "lessons"
    lessons.mkdir()
    sources = lesson_sources(run, folder)
    for path, executed in sources:
        place(path, lessons / path.name, executed)
        if not executed:
            print(
                f"[r3lab] site: {path.stem} is not in the run folder; its page has no outputs "
                f"(run `r3lab notebooks run --out {run or 'runs/main'}` first)",
                file=sys.stderr,
            )
    (lessons / "index.md").write_text(lessons_page(sources, run), encoding="utf-8")
    api = stage_dir / "api"
    api.mkdir()
    for room, text in api_pages(rooms).items():
        (api / f"{room}.md").write_text(text, encoding="utf-8")
    kit = stage_dir / "instructor"  # the instructor's pages and solution notebooks, however deep
    instructor = (
        sorted((p for p in kit.rglob("*") if p.suffix in (".md", ".ipynb")), key=lambda p: (p.name != "index.md", p))
        if kit.is_dir()
        else []
    )
    if instructor and not (kit / "index.md").is_file():  # the home page links the folder
        (kit / "index.md").write_text(
            "# Instructor's kit\n\n"
            + "\n".join(f"- [{_title(p)}]({p.relative_to(kit).as_posix()})" for p in instructor)
            + "\n"
        )
        instructor.insert(0, kit / "index.md")
    extra = sorted(p for p in stage_dir.glob("*.md") if p.name != "index.md")
    nav = [
        {"Home": "index.md"},
        {"Lessons": ["lessons/index.md"] + [{p.stem: f"lessons/{p.name}"} for p, _ in sources]},
    ]
    if instructor:
        nav.append({"Instructor's kit": [p.relative_to(stage_dir).as_posix() for p in instructor]})
    guide = guide_nav(stage_dir)
    nav += ([{"Guide": guide}] if guide else []) + [{_title(p): p.name} for p in extra]
    nav.append({"API reference": [{f"r3lab.{r}": f"api/{r}.md"} for r in rooms]})
    config = {"INHERIT": str(BASE_CONFIG), "docs_dir": str(stage_dir), "site_dir": str(out.resolve()), "nav": nav}
    path = stage_dir.parent / f"{stage_dir.name}.mkdocs.yml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def guide_nav(stage_dir: Path) -> list:
    """The guide's pages in mkdocs.yml's order and sections, then any page that list misses (never left out)."""
    import yaml

    base = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8")) or {}
    listed = next((item["Guide"] for item in base.get("nav", []) if isinstance(item, dict) and "Guide" in item), [])

    def pages(entry) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        items = entry.values() if isinstance(entry, dict) else entry
        return [p for item in items for p in pages(item)]

    def present(entries: list) -> list:  # the pages that exist, sections kept while they hold one
        out = []
        for e in entries:
            if isinstance(e, str) and (stage_dir / e).is_file():
                out.append(e)
            elif isinstance(e, dict):
                out += [{k: kept} for k, v in e.items() if (kept := present(v if isinstance(v, list) else [v]))]
        return out

    known = set(pages(listed))
    rest = sorted(p.relative_to(stage_dir).as_posix() for p in (stage_dir / "guide").glob("*.md"))
    return present(listed) + [p for p in rest if p not in known]


def _title(page: Path) -> str:
    if page.suffix == ".ipynb":
        return page.stem.replace("_", " ")
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem.replace("-", " ")


def build_site(
    run: str | Path | None = "runs/main",
    out: str | Path = "site",
    rooms=API_ROOMS,
    folder: Path | None = None,
    strict: bool = False,
) -> Path:
    """Stage and build the site into `out`; returns `out/index.html`. Needs the `docs` extra (mkdocs)."""
    try:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
    except ImportError:
        raise ImportError("the site needs MkDocs: pip install -e '.[docs]'") from None
    out = Path(out)
    run = Path(run) if run else None
    if run is not None and not run.is_dir():
        print(f"[r3lab] site: no run folder {run}; lessons are shown without outputs", file=sys.stderr)
        run = None
    config = stage(out, run, out.parent / f".{out.name}-src", rooms, folder)
    cfg = load_config(str(config), strict=strict)
    build(cfg)
    return out / "index.html"
