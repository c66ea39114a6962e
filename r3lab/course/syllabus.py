"""The course's syllabus: every statement generated from the lessons (`r3lab.course.catalog`: each lesson's
objectives, what it needs first) and their measured times.

Times are measured, never written by hand: `times.json` (`r3lab.course.timing`) holds each lesson's seconds as a
run recorded them, and everything that states a time or the number of lessons is generated from it: the README's
course table, notebooks/README.md's, the objectives page, the Colab page's table, and every span
`<!-- time:KEY -->...<!-- /time -->` or `<!-- count:lessons -->...<!-- /count -->` in the course's markdown and
notebooks (`SPAN_FILES`). `python -m r3lab.course.syllabus [--times RUN/results.json]` records a run and rewrites
them all; `tests/course/test_syllabus.py` fails on a stale file or a duration written outside a span.

Span keys: `time:NN` (the default run on the reference CPU), `time:NN:smoke`, `time:NN:gpu`, `time:NN:cpu` (CPU
seconds), `time:series` (the whole series), `time:series:smoke`, `time:series:gpu`, `time:routes` (`make routes`;
`time:routes:colab` one route), `time:ci` (a green `.ci/run`; `time:ci:test` its `make test`), `count:lessons`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import catalog, colab, timing
from .catalog import LESSONS
from .catalog import Lesson as Lesson  # the lessons' data: importable from here too
from .catalog import lesson as lesson


def record_times(results_json: str | Path, path: Path | None = None) -> dict:
    """Write a run's times into `times.json` (its column from the run: default, GPU or smoke); only lessons that
    passed. Returns what was recorded."""
    return timing.record(results_json, {x.notebook for x in LESSONS}, path or catalog.TIMES)


times_from_run = timing.times_from_run


def _total(column: str) -> float | None:
    values = [timing.seconds(x.notebook, column, catalog.TIMES, required=False) for x in LESSONS]
    return None if any(v is None for v in values) else sum(values)


def course_table(link: str = "notebooks/{notebook}.ipynb") -> str:
    """The markdown table of the course: lesson (linked), its objectives, its measured times (the reference CPU, a
    GPU where one ran the series, CI's smoke mode), then the series' total."""
    gpu = any(x.gpu_s is not None for x in LESSONS)
    lines = [
        "| lesson | you will | 2-core CPU |" + (" GPU |" if gpu else "") + " CI (smoke) |",
        "|---|---|---|" + ("---|" if gpu else "") + "---|",
    ]
    for x in LESSONS:
        lines.append(
            f"| [{x.notebook[:2]} · {x.title}]({link.format(notebook=x.notebook)}) | "
            f"{'; '.join(x.objectives)} | {x.minutes} |"
            + (f" {timing.fmt(x.gpu_s)} |" if gpu else "")
            + f" {timing.fmt(x.smoke_s)} |"
        )
    lines.append(
        f"\nThe whole series, default parameters: {phrase('time', 'series')} on the 2-core CPU"
        + (f", {phrase('time', 'series:gpu')} with a GPU" if gpu else "")
        + "."
    )
    return "\n".join(lines)


COLAB = "https://colab.research.google.com/github/r3lab/r3lab/blob/main/notebooks/{notebook}.ipynb"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(notebook: str) -> str:
    return COLAB.format(notebook=notebook)


def colab_table() -> str:
    """Every lesson with its Colab link (docs/colab.md and the site)."""
    lines = ["| lesson | open in Colab |", "|---|---|"]
    lines += [
        f"| {x.notebook[:2]} · {x.title} | [![Open in Colab]({COLAB_BADGE})]({colab_url(x.notebook)}) |"
        for x in LESSONS
    ]
    return "\n".join(lines)


def objectives_markdown() -> str:
    """Per lesson: its objectives as a list, what it needs first and its measured time."""
    out = []
    for x in LESSONS:
        needs = f" Needs: {', '.join(x.needs)}." if x.needs else ""
        out.append(
            f"### {x.notebook} · {x.title} ({x.minutes})\n\nAfter it a student can:\n\n"
            + "".join(f"- {o}\n" for o in x.objectives)
            + (f"\n{needs.strip()}\n" if needs else "")
        )
    return "\n".join(out)


SPAN = re.compile(r"<!-- (time|count|expected):([\w:.-]+) -->(.*?)<!-- /\1 -->", re.S)
SPAN_FILES = (
    "README.md",
    "notebooks/README.md",
    "docs/index.md",
    "docs/colab.md",
    "docs/instructor/*.md",
    "notebooks/*.ipynb",
    "notebooks/solutions/*.ipynb",
)  # where spans stand (globs from the root)


def phrase(kind: str, key: str) -> str:
    """The generated text of a span: `time` keys give a measured time ('3.4 min', '36 s'), `count:lessons` the
    number of lessons as a word. An unknown key or lesson is an error naming the keys."""
    if kind == "count" and key == "lessons":
        return timing.number_word(len(LESSONS))
    if kind == "expected":
        from .exercises import expected

        return expected(key)
    name, _, column = key.partition(":")
    if kind == "time" and name == "ci":  # a green .ci/run: the whole of it, or make test's suite ("ci:test")
        seconds = timing.ci_seconds(column, catalog.TIMES)
        return timing.fmt(seconds) if seconds is not None else "not measured yet"
    if kind == "time" and name == "routes":  # make routes: all of them, or one ("routes:wheel")
        routed = timing.route_seconds(column, catalog.TIMES)
        return timing.fmt(routed) if routed is not None else "not measured yet"
    column = {"": "default_s", "smoke": "smoke_s", "gpu": "gpu_s", "cpu": "cpu_s"}.get(column)
    if kind != "time" or column is None:
        raise ValueError(
            f"no span <!-- {kind}:{key} -->; known: time:NN, time:NN:smoke|gpu|cpu, "
            "time:series[:smoke|gpu|cpu], time:routes[:colab|wheel|binder], time:ci[:test], count:lessons, "
            "expected:NN.K"
        )
    if name == "series":
        seconds = _total(column)
    else:
        seconds = timing.seconds(
            lesson(name).notebook, column, catalog.TIMES, required=column in ("default_s", "smoke_s")
        )
    return timing.fmt(seconds) if seconds is not None else "not measured yet"


def fill_spans(text: str) -> str:
    """`text` with every span's content regenerated from the syllabus and `times.json`."""
    return SPAN.sub(lambda m: f"<!-- {m[1]}:{m[2]} -->{phrase(m[1], m[2])}<!-- /{m[1]} -->", text)


BLOCKS = {  # README block -> (its first line, its last line)
    "course": (
        "<!-- course table: generated from r3lab.course.syllabus (course_table) -->",
        "<!-- end of the course table -->",
    ),
    "replication": (
        "<!-- replication table: generated from assets/checkpoints/card_results.json (r3lab.recipe.markdown_table) -->",
        "<!-- end of the replication table -->",
    ),
    "curriculum": (
        "<!-- curriculum table: generated from the default RecipeConfig (r3lab.recipe.curriculum_table) -->",
        "<!-- end of the curriculum table -->",
    ),
}
NB_BLOCKS = {"course": BLOCKS["course"]}  # notebooks/README.md: the same table, linked from beside the notebooks
COLAB_BLOCKS = {
    "colab": (
        "<!-- colab table: generated from r3lab.course.syllabus (colab_table) -->",
        "<!-- end of the colab table -->",
    )
}


def chance_line(card: dict) -> str:
    """What a uniform guess scores on each family of a recipe's results (its world's settings, the default tasks)."""
    from ..data.world import WorldConfig
    from ..evaluation.progress import chance_levels
    from ..recipe.report import families_of

    world = WorldConfig(**card.get("config", {}).get("world", {}))
    known = [f for f in families_of(card, None) if f in ("read_one", "compare_two", "count", "control")]
    levels = chance_levels(world=world, families=known)
    return (
        "Chance, a uniform guess among each question's answers: "
        + ", ".join(f"{fam} {100 * v:.1f} %" for fam, v in levels.items())
        + "."
    )


def _fill_blocks(text: str, tables: dict[str, str], blocks: dict, where: str) -> str:
    for name, (start, end) in blocks.items():
        if start not in text or end not in text:
            raise ValueError(
                f"{where}: the {name} table's markers are missing; put these two lines where it goes:\n{start}\n{end}"
            )
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{tables[name]}\n{end}{rest.split(end, 1)[1]}"
    return text


def fill_readme(text: str, card: dict | None = None) -> str:
    """`text` (the README) with its generated blocks rewritten: the course table from `LESSONS`, the replication
    table from `card` (default: the shipped card's results), the curriculum table from the default recipe, and its
    spans. A missing marker is an error naming it."""
    from ..recipe.report import curriculum_table, markdown_table
    from ..recipe.shipping import load_card

    card = card or load_card()
    tables = {
        "course": course_table(),
        "replication": markdown_table(card) + "\n\n" + chance_line(card),
        "curriculum": curriculum_table(),
    }
    return fill_spans(_fill_blocks(text, tables, BLOCKS, "README"))


OBJECTIVES_HEAD = """# Objectives per lesson

Drawn from `r3lab.course.syllabus`: `python -m r3lab.course.syllabus` rewrites this page and the README's tables
from it. Times are measured wall times of the default run on a 2-core CPU, one thread.

"""


QUIZ_HEAD = """# Quizzes

Every lesson's quiz, each answer with why every choice is right or wrong. Students answer them in the lesson
(`quiz("20")` shows one, `answer("20", 2, "b")` checks a choice). Drawn from `r3lab/course/quizzes.md` by
`python -m r3lab.course.syllabus`.

"""
EXERCISES_HEAD = """# Exercises at a glance

Every lesson's exercises with their difficulty (one to three dots), a student's budget in minutes at the lesson's
default sizes, the hardware they need, whether they fit in class (ten minutes or less on a CPU) or are homework, and
the check a student runs (`r3lab.course.check`). Drawn from the
lessons by `python -m r3lab.course.syllabus`; the answers are in `notebooks/solutions/`, executed by `make solutions`.

"""


def exercises_markdown(root: str | Path) -> str:
    """One table of every lesson's exercises (from the notebooks under `root`)."""
    from .exercises import exercises

    lines = ["| exercise | title | difficulty | minutes | hardware | when | check |", "|---|---|---|---|---|---|---|"]
    for x in LESSONS:
        for e in exercises(Path(root) / "notebooks" / f"{x.notebook}.ipynb"):
            when = "in class" if e.minutes <= 10 and e.hardware == "CPU" else "homework"
            check = f'`check("{e.check}", ...)`' if e.check else "–"
            lines.append(
                f"| {e.key} | {e.title} | {'●' * e.difficulty}{'○' * (3 - e.difficulty)} | {e.minutes} | "
                f"{e.hardware} | {when} | {check} |"
            )
    return "\n".join(lines) + "\n"


def generated(root: str | Path) -> dict[Path, str]:
    """Every generated file of the course under `root` with the text it should hold now: the README (its tables and
    spans), notebooks/README.md and docs/colab.md (their tables and spans; the page's set-up cell), the objectives page,
    and the spans of every other `SPAN_FILES` file (a notebook's markdown cells and its set-up cell,
    `r3lab.course.colab`; its JSON otherwise untouched)."""
    from .quizzes import quiz_markdown

    root = Path(root)
    kit = root / "docs" / "instructor"
    out = {
        kit / "objectives.md": OBJECTIVES_HEAD + objectives_markdown(),
        kit / "quizzes.md": QUIZ_HEAD + quiz_markdown(),
        kit / "exercises.md": EXERCISES_HEAD + exercises_markdown(root),
    }
    special = {
        root / "README.md": fill_readme,
        root / "notebooks" / "README.md": lambda t: fill_spans(
            _fill_blocks(t, {"course": course_table("{notebook}.ipynb")}, NB_BLOCKS, "notebooks/README.md")
        ),
        root / "docs" / "colab.md": lambda t: colab.fill_colab_page(
            fill_spans(_fill_blocks(t, {"colab": colab_table()}, COLAB_BLOCKS, "docs/colab.md"))
        ),
    }
    for pattern in SPAN_FILES:
        for path in sorted(root.glob(pattern)):
            if path not in out:
                text = path.read_text(encoding="utf-8")
                fill = special.get(
                    path, (lambda t: colab.fill_notebook(_fill_notebook(t))) if path.suffix == ".ipynb" else fill_spans
                )
                out[path] = fill(text)
    return out


def _fill_notebook(text: str) -> str:
    """A notebook's JSON with its markdown cells' spans regenerated (nothing else touched)."""
    nb = json.loads(text)
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            new = fill_spans(src)
            if new != src:
                cell["source"], changed = (
                    (new.splitlines(keepends=True) if isinstance(cell["source"], list) else new),
                    True,
                )
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n" if changed else text


def stale(root: str | Path) -> list[Path]:
    """The generated files under `root` that differ from what the syllabus and `times.json` say now."""
    return [p for p, text in generated(root).items() if not p.is_file() or p.read_text(encoding="utf-8") != text]


def write_docs(root: str | Path) -> list[Path]:
    """Rewrite every generated file under `root` (`generated`); returns those that changed."""
    changed = []
    for path, text in generated(root).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":  # python -m r3lab.course.syllabus [--times RESULTS_JSON ...] [repository root]
    import argparse

    from ..core.env import REPO_ROOT

    cli = argparse.ArgumentParser(prog="python -m r3lab.course.syllabus", description=__doc__.split("\n")[0])
    cli.add_argument("--times", action="append", default=[], help="a runner's results.json whose times to record")
    cli.add_argument("--routes", action="append", default=[], help="make routes' routes.json whose times to record")
    cli.add_argument("--ci", action="append", default=[], help="a green .ci/run's log whose times to record")
    cli.add_argument(
        "--expected",
        action="append",
        default=[],
        help="a default solutions run's results.json whose expected outputs to record",
    )
    cli.add_argument("root", nargs="?", default=str(REPO_ROOT), help="the repository (README.md, docs/, notebooks/)")
    opts = cli.parse_args()
    for run in opts.times:
        print("recorded", record_times(run))
    for run in opts.routes:
        print("recorded the routes", timing.record_routes(run))
    for log in opts.ci:
        print("recorded CI's times", timing.record_ci(log))
    if opts.expected:
        from .exercises import record_expected

        for run in opts.expected:
            print("recorded expected outputs of", sorted(record_expected(run)))
    print("rewrote", *(write_docs(opts.root) or ["nothing: every generated file was up to date"]))
