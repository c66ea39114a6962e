"""The site shows notebooks this machine's runner executed as they are, and sanitises every other one."""

import nbformat
import pytest

from r3lab.course import trust

EVIL = (
    '<table><tr><td onclick="steal()">ok</td></tr></table><script>alert(1)</script>'
    '<img src="data:image/png;base64,AAAA"><img src="http://x/y.png" onerror="steal()">'
    '<a href="javascript:steal()">x</a><a href="../00_a.ipynb">next</a><iframe src="http://x"></iframe>'
)


@pytest.fixture(autouse=True)
def own_store(tmp_path, monkeypatch):
    monkeypatch.setenv("R3LAB_TRUST_DIR", str(tmp_path / "trust"))


def _nb(tmp_path, name="00_a.ipynb"):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            {"text/html": EVIL, "text/plain": "t", "application/javascript": "steal()", "image/png": "iVBORw0KGgo="},
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# A\n\n<script>steal()</script> and `<answer>` in code"), code]
    path = tmp_path / name
    nbformat.write(nb, str(path))
    return path


def test_html_keeps_tables_and_images_and_loses_what_runs():
    clean = trust.clean_html(EVIL)
    assert "<table><tbody><tr><td>ok</td></tr></tbody></table>" in clean
    assert "onclick" not in clean and "onerror" not in clean
    assert "<script>" not in clean and "&lt;script&gt;" in clean and "<iframe" not in clean
    assert '<img src="data:image/png;base64,AAAA">' in clean and 'src="http://x/y.png"' not in clean
    assert "javascript:" not in clean and '<a href="../00_a.ipynb">next</a>' in clean


def test_markdown_is_cleaned_outside_code_only():
    md = trust.clean_markdown("<script>x</script> text `<answer>` and\n```\n<think>\n```\n")
    assert md.startswith("&lt;script&gt;") and "`<answer>`" in md and "```\n<think>\n```" in md


def test_a_notebook_is_signed_until_its_content_changes(tmp_path):
    path = _nb(tmp_path)
    assert not trust.signed(path)
    trust.sign(path)
    assert trust.signed(path)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[0].source += "<script>later()</script>"
    nbformat.write(nb, str(path))
    assert not trust.signed(path)  # edited after the run: no longer what the runner executed


def test_sanitize_cleans_outputs_and_drops_scripts(tmp_path):
    nb = nbformat.read(str(_nb(tmp_path)), as_version=4)
    nb.metadata["widgets"] = {"state": {}}
    assert trust.sanitize(nb) >= 3
    data = nb.cells[1].outputs[0]["data"]
    assert set(data) == {"text/html", "text/plain", "image/png"} and "<script>" not in data["text/html"]
    assert "<script>" not in nb.cells[0].source and "`<answer>`" in nb.cells[0].source
    assert "widgets" not in nb.metadata


def test_the_site_copies_signed_notebooks_and_sanitises_the_rest(tmp_path, capsys):
    from r3lab.course.site import place

    ours, theirs = _nb(tmp_path, "00_a.ipynb"), _nb(tmp_path, "10_b.ipynb")
    trust.sign(ours)
    assert place(ours, tmp_path / "ours.ipynb", executed=True) is False
    assert (tmp_path / "ours.ipynb").read_text() == ours.read_text()
    assert place(theirs, tmp_path / "theirs.ipynb", executed=True) is True
    assert "<script>" not in (tmp_path / "theirs.ipynb").read_text()
    assert "was not executed by this machine's runner" in capsys.readouterr().err
