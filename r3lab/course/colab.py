"""The set-up cell every lesson opens with: on Colab (where r3lab is not installed) it clones r3lab and installs
`r3lab[course]` into the running kernel, without a restart; wherever r3lab imports already, it does nothing.

One text (`SETUP_CELL`), written by `python -m r3lab.course.syllabus` as the first code cell of every lesson and
solution and into docs/colab.md (`write_setup_cells`); `tests/course/test_colab.py` checks each copy, runs it here
(nothing happens) and runs its install branch on a fresh clone.
"""

from __future__ import annotations

import json
import re

MARK = "# r3lab set-up"  # the cell's first line: how the cell is found again
SETUP_CELL = f"""{MARK}: on Colab this clones r3lab and installs r3lab[course] (once a session, no restart);
# wherever r3lab is installed already (a clone's kernel, Binder, pip) it does nothing.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("r3lab") is None:
    REPO, HOME = os.environ.get("R3LAB_REPO", "https://github.com/r3lab/r3lab"), os.environ.get("R3LAB_HOME", "r3lab")
    if "google.colab" not in sys.modules and "R3LAB_REPO" not in os.environ:
        raise ModuleNotFoundError(
            "r3lab is not installed in this kernel: pip install 'r3lab[course]', or pick the "
            "kernel 'r3lab (Python 3)' that `make setup` registers"
        )
    HOME = os.path.abspath(os.path.join("/content" if "google.colab" in sys.modules else ".", HOME))
    if not os.path.isdir(os.path.join(HOME, "r3lab")):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", REPO, HOME], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", HOME + "[course]"], check=True)
    sys.path.insert(0, HOME)  # this kernel imports the clone at once, without a restart
    os.chdir(os.path.join(HOME, "notebooks"))"""


def is_setup_cell(cell: dict) -> bool:
    src = "".join(cell["source"]) if isinstance(cell.get("source"), list) else cell.get("source", "")
    return cell.get("cell_type") == "code" and src.startswith(MARK)


def fill_notebook(text: str) -> str:
    """A notebook's JSON whose first code cell is `SETUP_CELL` (replaced if it is one, else inserted before the
    first code cell); nothing else touched."""
    nb = json.loads(text)
    cells = nb.get("cells", [])
    first = next((i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells))
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "r3lab-setup",
        "metadata": {},
        "outputs": [],
        "source": SETUP_CELL.splitlines(keepends=True),
    }
    if first < len(cells) and is_setup_cell(cells[first]):
        if "".join(cells[first]["source"]) == SETUP_CELL:
            return text
        cell = {**cells[first], "source": cell["source"]}
        cells[first] = cell
    else:
        cells.insert(first, cell)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def fill_colab_page(text: str) -> str:
    """docs/colab.md with its set-up block (the first ```python block after '## The set-up cell') = `SETUP_CELL`."""
    head, sep, rest = text.partition("## The set-up cell")
    if not sep:
        raise ValueError("docs/colab.md: no '## The set-up cell' section")
    new, n = re.subn(r"```python\n.*?```", lambda m: f"```python\n{SETUP_CELL}\n```", rest, count=1, flags=re.S)
    if not n:
        raise ValueError("docs/colab.md: no ```python block under '## The set-up cell'")
    return head + sep + new
