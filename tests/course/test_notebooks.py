"""The notebook series: conventions (static checks) and headless execution in smoke mode."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

from r3lab.course import runner as nbr
from r3lab.course import syllabus

ROOT = Path(__file__).resolve().parents[2]
NBS = nbr.find_notebooks()
EXPECTED = [
    "00_build_vlir",
    "10_interleaved_inference",
    "20_sft",
    "30_rgrpo",
    "40_explain_crops",
    "45_which_explanation_is_faithful",
    "47_did_the_crop_matter",
    "50_ablations",
    "60_scale_out",
    "70_analyse_a_real_run",
]


# lessons that train or evaluate a model: a `device` parameter ("auto": CUDA when present)
ON_A_DEVICE = {"10_interleaved_inference", "20_sft", "30_rgrpo", "60_scale_out", "70_analyse_a_real_run"}


def test_the_series_is_complete():
    assert [p.stem for p in NBS] == EXPECTED


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = nbformat.read(str(path), as_version=4)
    # cell 2 is the Colab set-up cell (tests/course/test_colab.py)
    first, params, setup = nb.cells[0], nb.cells[2], nb.cells[3]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
    assert f"labpath=notebooks%2F{path.name}" in first.source and "mybinder.org" in first.source
    assert f"colab.research.google.com/github/r3lab/r3lab/blob/main/notebooks/{path.name})" in first.source, (
        "cell 1 needs the Colab badge"
    )
    assert nb.metadata["kernelspec"]["name"] == "r3lab", "the r3lab kernel (make setup registers it)"
    assert re.search(r"(?i)hardware|cpu", first.source), "cell 1 needs a hardware note"
    assert params.cell_type == "code" and "parameters" in params.metadata.get("tags", [])
    # flat annotated literals with a help comment, all visible to papermill
    tree = ast.parse(params.source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), ast.unparse(node)
        assert isinstance(node.value, ast.Constant), f"{ast.unparse(node)}: parameters must be literals"
        assert ast.unparse(node.annotation) in ("bool", "int", "float", "str"), ast.unparse(node)
        names.append(node.target.id)
    for line in params.source.splitlines():
        if line.strip():
            assert "#" in line, f"parameter without a help comment: {line}"
    assert set(nbr.declared(path)) == set(names)
    assert "smoke" in names
    assert re.search(r"^(\w+ = )?setup\(seed(, device)?(, needs=\[.*?\])?\)", setup.source, re.M), (
        "cell 4 calls r3lab.course.setup(seed)"
    )
    extras = syllabus.lesson(path.stem).extras  # the optional libraries it imports: refused in one line if absent
    assert (
        re.search(r"needs=\[(.*?)\]", setup.source) is None
        if not extras
        else re.search(r"needs=\[(.*?)\]", setup.source)[1] == ", ".join(f'"{e}"' for e in extras)
    ), (path.stem, extras)
    assert re.search(r"from r3lab\.course import [^\n]*\banswer\b", setup.source), "the quiz's answer() is imported"
    if path.stem in ON_A_DEVICE:  # lessons that run a model take the device as a parameter and hand it to setup
        assert "device" in names and nbr.declared(path)["device"]["default"] in ('"auto"', "'auto'"), path.stem
        assert re.search(r"setup\(seed, device\b", setup.source), "setup(seed, device) in cell 4"
    for cell in nb.cells[4:]:  # parameters keep their values: smoke sizes come from r3lab.course.sizes
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(_strip_magics(cell.source))):
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    bound = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                    assert not bound & set(names), f"a later cell rebinds parameters {bound & set(names)}"
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.search(r"(?im)^#+ .*summary", md) and re.search(r"(?im)^#+ .*exercises", md)
    assert nb.cells[-1].cell_type == "code" and "assert" in nb.cells[-1].source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "commit notebooks without outputs"
            for node in ast.walk(ast.parse(_strip_magics(cell.source))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    assert length <= 12, f"{node.name} is {length} lines: move it into r3lab/"


@pytest.mark.parametrize(
    "path", NBS + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_number_parameter_states_its_range_and_its_default_is_inside(path):
    for name, d in nbr.declared(path).items():
        if d["inferred_type_name"] in ("int", "float"):
            span = nbr.bounds(d["help"])
            assert span, f"{path.name}: {name}'s help comment must end with its range, lo..hi"
            assert span[0] <= float(d["default"]) <= span[1], (name, d)


def _strip_magics(src: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    res = nbr.run_series([path.stem], profile="smoke", out=tmp_path, timeout=300)
    assert res[0].ok, res[0].error
    # it opens whole and quiet: no warnings or other stderr, no stateless widgets (frozen bars, empty players)
    outputs = [o for c in nbformat.read(str(res[0].output), as_version=4).cells for o in c.get("outputs", [])]
    noise = [o["text"][:300] for o in outputs if o.get("name") == "stderr"]
    assert not noise, f"{path.stem} wrote to stderr: {noise}"
    widgets = [
        o["data"].get("text/plain", "")[:80]
        for o in outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert not widgets, f"{path.stem} left widgets without state: {widgets}"
    assert res[0].page is not None and not res[0].oversize, res[0].oversize
    print(f"{path.stem}: {res[0].seconds:.1f} s {res[0].numbers}")


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", ["README.md", "notebooks/README.md", "DEVELOPERS.md"])
def test_links_and_badges_point_at_existing_files(doc):
    path = ROOT / doc
    text = path.read_text()
    checked = 0
    for target in LINK.findall(text):
        if target.startswith("https://mybinder.org/v2/gh/"):
            lab = re.search(r"labpath=([^&)]+)", target)
            assert lab, f"{doc}: binder link without labpath: {target}"
            assert (ROOT / lab.group(1).replace("%2F", "/")).is_file(), f"{doc}: binder target missing: {target}"
        elif target.startswith(("http://", "https://", "mailto:")):
            continue
        else:
            file = (path.parent / target.split("#")[0]).resolve()
            assert file.exists(), f"{doc}: broken link {target}"
        checked += 1
    assert checked or doc == "DEVELOPERS.md"


@pytest.mark.notebooks
def test_a_plotly_lesson_shows_every_figure_without_a_browser(tmp_path, monkeypatch):
    import os
    import sys

    # no browser reachable: the variables point nowhere and PATH holds only this Python's folder
    monkeypatch.setenv("R3LAB_CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-browser"))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    res = nbr.run_series(["70"], profile="smoke", out=tmp_path, timeout=300)
    assert res[0].ok, res[0].error
    outputs = [o for c in nbformat.read(str(res[0].output), as_version=4).cells for o in c.get("outputs", [])]
    plotly = [
        o
        for o in outputs
        if "application/vnd.plotly.v1+json" in o.get("data", {})
        or o.get("data", {}).get("text/plain", "").startswith("<plotly figure")
    ]
    assert len(plotly) >= 3 and all("image/png" in o["data"] for o in plotly), [
        o["data"].get("text/plain") for o in plotly
    ]
    machine = next(o["data"]["text/html"] for o in outputs if "r3lab-machine" in o.get("data", {}).get("text/html", ""))
    assert "matplotlib (no browser for kaleido: R3LAB_CHROMIUM=" in machine  # says what drew them, in one line
