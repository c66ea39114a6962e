"""docs/colab.md's set-up cell, run as written on this CPU: it clones the repository, finds r3lab installed
(so it skips pip), and leaves the kernel importing the clone from inside its notebooks folder."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .. import HANG_S

ROOT = Path(__file__).resolve().parents[2]


def setup_cell() -> str:
    text = (ROOT / "docs" / "colab.md").read_text()
    section = text.split("## The set-up cell", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "docs/colab.md: no ```python block under '## The set-up cell'"
    return blocks[0]


def test_the_colab_setup_cell_runs_on_cpu(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("the set-up cell clones a git repository; this checkout has none")
    home = tmp_path / "r3lab"
    code = setup_cell() + "\nprint('CWD', os.getcwd()); print('FILE', r3lab.__file__)\n"
    env = {**os.environ, "R3LAB_REPO": str(ROOT), "R3LAB_HOME": str(home), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("CWD", "FILE")))
    assert Path(lines["CWD"]) == home / "notebooks"
    assert (home / "notebooks" / "10_interleaved_inference.ipynb").is_file()
    assert Path(lines["FILE"]).is_relative_to(home), lines["FILE"]  # the clone, not the installed copy
    assert "CPU only" in out.stdout and "torch" in out.stdout
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S, env=env,
                           cwd=tmp_path)  # a second run in the same session: no clone, same result
    assert again.returncode == 0 and "CPU only" in again.stdout, again.stderr[-2000:]
