"""The course's syllabus: each lesson's objectives, what it needs first, and its measured wall times.

The README's course table and the instructor's kit are drawn from here (`course_table`, `objectives_markdown`),
so a lesson's time is written once. Times are wall seconds of the runner (`r3lab notebooks run`) on the 2-core
development CPU with one OpenMP thread, default parameters and smoke mode; `times_from_run` reads the same
numbers from a run's `results.json` to check or refresh them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lesson:
    notebook: str  # file stem in notebooks/
    title: str
    objectives: tuple[str, ...]  # what a student can do or explain afterwards
    default_s: float  # measured wall seconds, default parameters
    smoke_s: float  # measured wall seconds, smoke mode (CI)
    needs: tuple[str, ...] = ()  # lessons to have run first

    @property
    def minutes(self) -> str:
        """The default run's time for a table: seconds under a minute, else minutes to one decimal."""
        return f"{self.default_s:.0f} s" if self.default_s < 60 else f"{self.default_s / 60:.1f} min"


LESSONS = (
    Lesson("00_build_vlir", "Build VLIR samples",
           ("explain why the world's details need a zoom, from the coarse view, the zoomed crop and a probe's accuracy",
            "build, filter, save and reload a VLIR dataset and export it to the official formats",
            "write one crop box in both coordinate frames and both call grammars"), 40, 16),
    Lesson("10_interleaved_inference", "Interleaved inference",
           ("follow one rollout piece by piece: crop call, crop, conclusion",
            "read M-RoPE positions across inserted crops",
            "measure what keeping the KV cache across crops saves"), 13, 13, ("00_build_vlir",)),
    Lesson("20_sft", "SFT on interleaved rationales",
           ("say which tokens carry a loss and why",
            "set learning rates per parameter group and read a loss curve",
            "show on held-out questions that SFT raises read_one and the crop IoU"), 300, 19, ("00_build_vlir",)),
    Lesson("30_rgrpo", "R-GRPO",
           ("compute rewards, group advantages and the clipped loss by hand",
            "explain zero-std groups and when the clip binds",
            "read a held-out curve during training against noisy training curves"), 300, 17, ("20_sft",)),
    Lesson("40_explain_crops", "Explaining crop decisions",
           ("capture attention before each crop and compare it with the box the model wrote",
            "run counterfactual crops and say what each one tests"), 30, 13, ("10_interleaved_inference",)),
    Lesson("50_ablations", "The miniature replication",
           ("read the replication table against chance and the oracle and random rows",
            "separate when, where and integrate with rows (5) and (6)",
            "run an ablation of your own"), 240, 115, ("20_sft", "30_rgrpo")),
    Lesson("60_scale_out", "Scaling out on TRL",
           ("run the same samples, crop environment and rewards on TRL's GRPOTrainer",
            "check that the crops' pixels reach TRL's training forward"), 45, 26, ("30_rgrpo",)),
    Lesson("70_analyse_a_real_run", "Analysing a real run",
           ("import another system's run and explain its crops",
            "read the crop dashboard and spot a collapse"), 22, 20, ("40_explain_crops",)),
)


def lesson(name: str) -> Lesson:
    """A lesson by number prefix ("20") or notebook stem."""
    hits = [x for x in LESSONS if x.notebook == name or x.notebook.startswith(name + "_")]
    if len(hits) != 1:
        raise KeyError(f"no lesson {name!r}; known: {', '.join(x.notebook for x in LESSONS)}")
    return hits[0]


def course_table(link: str = "notebooks/{notebook}.ipynb") -> str:
    """The markdown table of the course: lesson (linked), its first objective, default and smoke times."""
    lines = ["| lesson | you will | default run | CI (smoke) |", "|---|---|---|---|"]
    for x in LESSONS:
        lines.append(f"| [{x.notebook[:2]} · {x.title}]({link.format(notebook=x.notebook)}) | "
                     f"{'; '.join(x.objectives)} | {x.minutes} | {x.smoke_s:.0f} s |")
    total = sum(x.default_s for x in LESSONS)
    lines.append(f"\nThe whole series, default parameters: about {total / 60:.0f} minutes.")
    return "\n".join(lines)


def objectives_markdown() -> str:
    """Per lesson: its objectives as a list, what it needs first and its measured time."""
    out = []
    for x in LESSONS:
        needs = f" Needs: {', '.join(x.needs)}." if x.needs else ""
        out.append(f"### {x.notebook} · {x.title} ({x.minutes})\n\nAfter it a student can:\n\n"
                   + "".join(f"- {o}\n" for o in x.objectives) + (f"\n{needs.strip()}\n" if needs else ""))
    return "\n".join(out)


def times_from_run(results_json: str | Path) -> dict[str, float]:
    """Wall seconds per notebook from a runner's `results.json` (`r3lab notebooks run --out DIR`)."""
    path = Path(results_json)
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a runner's results.json ({e}); run `r3lab notebooks run --out DIR` first") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r and "seconds" in r for r in rows):
        raise ValueError(f"{path}: expected a list of {{name, seconds, ...}} objects, as `r3lab notebooks run` writes")
    return {r["name"]: float(r["seconds"]) for r in rows}


BLOCKS = {  # README block -> (its first line, its last line)
    "course": ("<!-- course table: generated from r3lab.course.syllabus (course_table) -->",
               "<!-- end of the course table -->"),
    "replication": ("<!-- replication table: generated from assets/checkpoints/card_results.json "
                    "(r3lab.replication.markdown_table) -->", "<!-- end of the replication table -->"),
}


def chance_line(card: dict) -> str:
    """What a uniform guess scores on each family of a recipe's results (its world's settings, the default tasks)."""
    from ..data.world import WorldConfig
    from ..replication.progress import chance_levels
    from ..replication.report import families_of

    world = WorldConfig(**card.get("config", {}).get("world", {}))
    known = [f for f in families_of(card, None) if f in ("read_one", "compare_two", "count", "control")]
    levels = chance_levels(world=world, families=known)
    return "Chance, a uniform guess among each question's answers: " + ", ".join(
        f"{fam} {100 * v:.1f} %" for fam, v in levels.items()) + "."


def fill_readme(text: str, card: dict | None = None) -> str:
    """`text` (the README) with its generated blocks rewritten: the course table from `LESSONS`, the replication
    table from `card` (default: the shipped card's results). A missing marker is an error naming it."""
    from ..replication.report import markdown_table
    from ..replication.shipping import load_card

    card = card or load_card()
    tables = {"course": course_table(), "replication": markdown_table(card) + "\n\n" + chance_line(card)}
    for name, (start, end) in BLOCKS.items():
        if start not in text or end not in text:
            raise ValueError(f"README: the {name} table's markers are missing; put these two lines where it goes:\n"
                             f"{start}\n{end}")
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{tables[name]}\n{end}{rest.split(end, 1)[1]}"
    return text


OBJECTIVES_HEAD = """# Objectives per lesson

Drawn from `r3lab.course.syllabus`: `python -m r3lab.course.syllabus` rewrites this page and the README's tables
from it. Times are measured wall times of the default run on a 2-core CPU, one thread.

"""


def write_docs(root: str | Path) -> list[Path]:
    """Rewrite `root`/README.md's generated tables and `root`/docs/instructor/objectives.md."""
    root = Path(root)
    readme, goals = root / "README.md", root / "docs" / "instructor" / "objectives.md"
    readme.write_text(fill_readme(readme.read_text()))
    goals.write_text(OBJECTIVES_HEAD + objectives_markdown())
    return [readme, goals]


if __name__ == "__main__":  # python -m r3lab.course.syllabus [repository root]
    import sys

    from ..core.env import REPO_ROOT

    print("rewrote", *write_docs(sys.argv[1] if len(sys.argv) > 1 else REPO_ROOT))
