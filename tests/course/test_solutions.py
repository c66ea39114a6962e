"""Solutions to every exercise: one notebook per lesson in notebooks/solutions/, run by CI in smoke mode."""

import re
from pathlib import Path

import nbformat
import pytest

from r3lab.course import runner as nbr

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "notebooks" / "solutions"
LESSONS = nbr.find_notebooks()


def _exercises(path: Path) -> list[int]:
    """The numbers of a notebook's exercises (the numbered list under its Exercises heading)."""
    from r3lab.course.exercises import numbered

    return numbered(path)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution(lesson):
    path = SOLUTIONS / lesson.name
    assert path.is_file(), f"no solutions notebook for {lesson.stem}: add notebooks/solutions/{lesson.name}"
    nb = nbformat.read(str(path), as_version=4)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    solved = [int(n) for n in re.findall(r"(?m)^## Exercise (\d+)", md)]
    assert solved == _exercises(lesson), f"{path.name} answers exercises {solved}; the lesson has {_exercises(lesson)}"
    assert "parameters" in nb.cells[2].metadata.get("tags", []) and "smoke" in nbr.declared(path)  # after set-up
    assert nb.cells[-1].cell_type == "code" and "assert" in nb.cells[-1].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit solutions without outputs"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for n in solved:  # each answer runs the lesson's check and reports the expected output the lesson shows
        assert f"expected_{lesson.stem[:2]}_{n}" in code, f"{path.name}: exercise {n} reports no expected output"
    assert "report(" in nb.cells[-1].source, "the last cell reports the expected outputs"


@pytest.mark.notebooks
@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_solutions_run_in_smoke_mode(lesson, tmp_path):
    res = nbr.run_series([lesson.stem], profile="smoke", out=tmp_path, timeout=300, folder=SOLUTIONS)
    assert res[0].ok, res[0].error
