"""The course's syllabus: each lesson's objectives, what it needs first, and its measured wall times.

The README's course table and the instructor's kit are drawn from here (`course_table`, `objectives_markdown`),
so a lesson's time is written once. Times are wall seconds of the runner (`r3lab notebooks run`) on the 2-core
development CPU with one OpenMP thread, default parameters and smoke mode, kept in `times.json` beside this file:
`python -m r3lab.course.syllabus --times runs/main/results.json` records a run's times there (its profile decides
which column) and rewrites the README's tables and the objectives page.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TIMES = Path(__file__).with_name("times.json")  # measured wall seconds per lesson: {"lessons": {name: {...}}}


@dataclass(frozen=True)
class Lesson:
    notebook: str  # file stem in notebooks/
    title: str
    objectives: tuple[str, ...]  # what a student can do or explain afterwards
    needs: tuple[str, ...] = ()  # lessons to have run first

    @property
    def default_s(self) -> float:
        """Measured wall seconds of the default run (`times.json`)."""
        return _time(self.notebook, "default_s")

    @property
    def smoke_s(self) -> float:
        """Measured wall seconds in smoke mode, as CI runs it (`times.json`)."""
        return _time(self.notebook, "smoke_s")

    @property
    def minutes(self) -> str:
        """The default run's time for a table: seconds under a minute, else minutes to one decimal."""
        return f"{self.default_s:.0f} s" if self.default_s < 60 else f"{self.default_s / 60:.1f} min"


LESSONS = (
    Lesson("00_build_vlir", "Build VLIR samples",
           ("explain why the world's details need a zoom, from the coarse view, the zoomed crop and a probe's accuracy",
            "build, filter, save and reload a VLIR dataset and export it to the official formats",
            "write one crop box in both coordinate frames and both call grammars")),
    Lesson("10_interleaved_inference", "Interleaved inference",
           ("follow one rollout piece by piece: crop call, crop, conclusion",
            "read M-RoPE positions across inserted crops",
            "measure what keeping the KV cache across crops saves"), ("00_build_vlir",)),
    Lesson("20_sft", "SFT on interleaved rationales",
           ("say which tokens carry a loss and why",
            "set learning rates per parameter group and read a loss curve",
            "show on held-out questions that SFT raises read_one and the crop IoU"), ("00_build_vlir",)),
    Lesson("30_rgrpo", "R-GRPO",
           ("compute rewards, group advantages and the clipped loss by hand",
            "explain zero-std groups and when the clip binds",
            "read a held-out curve during training against noisy training curves"), ("20_sft",)),
    Lesson("40_explain_crops", "Explaining crop decisions",
           ("read one record per crop: attention, gradients, patching and a logit lens side by side",
            "count where attention disagrees with the box the model wrote",
            "patch a crop with a blank, coarse or another sample's view and say what each one tests"),
           ("10_interleaved_inference",)),
    Lesson("45_attention_is_not_an_explanation", "Attention is not an explanation",
           ("measure explanation maps with a pointing game, deletion and insertion curves and a random baseline",
            "say where attention, gradients and patching agree and where they do not"), ("40_explain_crops",)),
    Lesson("47_did_the_crop_matter", "Did the crop matter?",
           ("say what format-only, a dummy crop and result-only test, and read each against its chance level",
            "find the tool-only solved set and say why pass@k misleads on a small answer set",
            "set attention against the written box per crop, read a run's report and the diff between two runs"),
           ("40_explain_crops",)),
    Lesson("50_ablations", "The miniature replication",
           ("read the replication table against chance and the oracle and random rows",
            "separate when, where and integrate with rows (5) and (6)",
            "run an ablation of your own"), ("20_sft", "30_rgrpo")),
    Lesson("60_scale_out", "Scaling out on TRL",
           ("run the same samples, crop environment and rewards on TRL's GRPOTrainer",
            "check that the crops' pixels reach TRL's training forward"), ("30_rgrpo",)),
    Lesson("70_analyse_a_real_run", "Analysing a real run",
           ("import another system's run and explain its crops",
            "read the crop dashboard and spot a collapse"), ("40_explain_crops",)),
)


def _time(notebook: str, column: str) -> float:
    entry = json.loads(TIMES.read_text())["lessons"].get(notebook, {})
    if column not in entry:
        raise KeyError(f"{TIMES}: no {column} for {notebook}; record a run: python -m r3lab.course.syllabus --times "
                       "runs/main/results.json")
    return float(entry[column])


def record_times(results_json: str | Path, path: Path = TIMES) -> dict:
    """Write a run's wall times into `times.json`: the default column for a default run, the smoke column for a smoke
    run (its notebooks' `smoke` parameter); only notebooks that passed. Returns what was recorded."""
    rows = json.loads(Path(results_json).read_text()) if Path(results_json).is_file() else None
    seconds = times_from_run(results_json)
    data = json.loads(path.read_text())
    done = {}
    for r in rows:
        if r.get("ok") and r["name"] in {x.notebook for x in LESSONS}:
            column = "smoke_s" if (r.get("parameters") or {}).get("smoke") else "default_s"
            entry = data["lessons"].setdefault(r["name"], {})
            entry[column] = done[r["name"]] = round(seconds[r["name"]], 1)
            entry["source"] = f"{column}: recorded from {results_json}"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return done


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
    "curriculum": ("<!-- curriculum table: generated from the default RecipeConfig "
                   "(r3lab.replication.curriculum_table) -->", "<!-- end of the curriculum table -->"),
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
    table from `card` (default: the shipped card's results), the curriculum table from the default recipe. A
    missing marker is an error naming it."""
    from ..replication.report import curriculum_table, markdown_table
    from ..replication.shipping import load_card

    card = card or load_card()
    tables = {"course": course_table(), "replication": markdown_table(card) + "\n\n" + chance_line(card),
              "curriculum": curriculum_table()}
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


if __name__ == "__main__":  # python -m r3lab.course.syllabus [--times RESULTS_JSON ...] [repository root]
    import argparse

    from ..core.env import REPO_ROOT

    cli = argparse.ArgumentParser(prog="python -m r3lab.course.syllabus", description=__doc__.split("\n")[0])
    cli.add_argument("--times", action="append", default=[], help="a runner's results.json whose times to record")
    cli.add_argument("root", nargs="?", default=str(REPO_ROOT), help="the repository (README.md, docs/instructor/)")
    opts = cli.parse_args()
    for run in opts.times:
        print("recorded", record_times(run))
    print("rewrote", *write_docs(opts.root))
