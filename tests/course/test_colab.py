"""The set-up cell every lesson opens with (`r3lab.course.colab`): the same text in every lesson, solution and
docs/colab.md; nothing happens where r3lab imports; one line says what to install where it does not and the kernel
is not Colab's. Its install branch (clone, `pip install -e .[course]`, import without a restart) runs in a fresh
environment in `make routes` (routes/colab.sh), never here: it would reinstall this checkout's environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from r3lab.course import colab
from r3lab.course.runner import find_notebooks

from .. import HANG_S

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = find_notebooks() + sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb"))


def page_cell() -> str:
    section = (ROOT / "docs" / "colab.md").read_text().split("## The set-up cell", 1)[1]
    blocks = re.findall(r"```python\n(.*?)\n```", section, re.S)
    assert blocks, "docs/colab.md: no ```python block under '## The set-up cell'"
    return blocks[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_lesson_opens_with_the_setup_cell(path):
    cells = json.loads(path.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]) == colab.SETUP_CELL, f"{path.name}: python -m r3lab.course.syllabus rewrites it"
    assert "parameters" not in first["metadata"].get("tags", [])
    assert page_cell() == colab.SETUP_CELL


def test_the_cell_does_nothing_where_r3lab_imports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"the cell ran {a}"))
    path = list(sys.path)
    exec(compile(colab.SETUP_CELL, "setup-cell", "exec"), {})
    assert Path.cwd() == tmp_path and sys.path == path and not list(tmp_path.iterdir())


def test_without_r3lab_outside_colab_it_says_what_to_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("R3LAB_REPO", "PYTHONPATH")}
    # -S: no site-packages, so r3lab does not import (this kernel's Python without the course installed)
    out = subprocess.run(
        [sys.executable, "-S", "-c", colab.SETUP_CELL],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=HANG_S,
    )
    assert out.returncode == 1 and not list(tmp_path.iterdir())
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: r3lab is not installed in this kernel: pip install 'r3lab[course]'")


def test_fill_notebook_inserts_once_and_keeps_the_rest():
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# t"]},
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": ["x: int = 1  # x, 0..9"],
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    once = colab.fill_notebook(json.dumps(nb))
    cells = json.loads(once)["cells"]
    assert [colab.is_setup_cell(c) for c in cells] == [False, True, False] and cells[2] == nb["cells"][1]
    assert colab.fill_notebook(once) == once
    stale = json.loads(once)
    stale["cells"][1]["source"] = [colab.MARK + ": an older text\n"]
    assert json.loads(colab.fill_notebook(json.dumps(stale)))["cells"][1]["source"] == cells[1]["source"]
