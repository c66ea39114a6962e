"""Shared by the page and JupyterLab browser tests: one small notebook executed by the runner, as lessons are."""

import nbformat
import pytest

from r3lab.course import runner as nbr

BODY = """from r3lab.course import report, setup
from r3lab.testing import tiny_policy, toy_trajectory
from r3lab.viz import step_player
import matplotlib.pyplot as plt
import plotly.graph_objects as go
import warnings
machine = setup(seed)
warnings.warn("a library warning nobody filtered")  # stands in for noise: the page check must see it
fig, ax = plt.subplots(figsize=(3, 2)); ax.plot([0, 1], [1, 0]); plt.show()
display(go.Figure(go.Bar(x=["a", "b"], y=[2, 3]), layout=dict(width=360, height=240, title="bars")))
display(step_player(toy_trajectory(tiny_policy())))
report(answer=42, share=0.5)"""


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """(run folder, result, notebooks folder) of one small notebook run through the runner."""
    tmp = tmp_path_factory.mktemp("pages")
    folder = tmp / "nbs"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("smoke: bool = False  # small sizes\nseed: int = 0  # seeds")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · Figures"), params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "r3lab", "display_name": "r3lab", "language": "python"}
    nbformat.write(nb, str(folder / "00_figures.ipynb"))
    (result,) = nbr.run_series(None, profile="smoke", out=tmp / "run", timeout=240, folder=folder)
    assert result.ok, result.error
    return tmp / "run", result, folder
