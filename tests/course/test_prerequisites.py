"""Each lesson states what it needs first, as the syllabus lists it (`Lesson.needs`), in its opening cell."""

import nbformat
import pytest

from r3lab.course import runner as nbr
from r3lab.course import syllabus


def needs_line(stem: str) -> str:
    """The line a lesson opens with: the lessons it builds on, linked, from the syllabus."""
    needs = [syllabus.lesson(n) for n in syllabus.lesson(stem).needs]
    if not needs:
        return "**Needs first:** nothing; this is the first lesson."
    links = " and ".join(f"[{x.notebook[:2]} · {x.title}]({x.notebook}.ipynb)" for x in needs)
    return f"**Needs first:** {links} (the ideas; this notebook runs on its own)."


@pytest.mark.parametrize("path", nbr.find_notebooks(), ids=lambda p: p.stem)
def test_a_lesson_opens_with_what_it_needs_first(path):
    first = nbformat.read(str(path), as_version=4).cells[0].source
    assert needs_line(path.stem) in first, needs_line(path.stem)
    assert first.index("**Needs first:**") < first.index("**Hardware and time.**")
