"""A lesson's claims hold at its defaults: asserted there, and named as not asserted at any other size (QA #22)."""

import ast
import re

import nbformat
import pytest

from r3lab.course import runner as nbr
from r3lab.course.claims import WHERE, at_defaults, changed, defaults

from .. import HANG_S

NBS = nbr.find_notebooks()
SOLUTIONS = nbr.find_notebooks(folder=nbr.NOTEBOOKS / "solutions")
# lessons whose last cell asserts claims that hold for the default run only (sizes, seeds, the shipped models)
CLAIMS = {
    "00_build_vlir",
    "20_sft",
    "30_rgrpo",
    "40_explain_crops",
    "45_which_explanation_is_faithful",
    "47_did_the_crop_matter",
    "50_ablations",
    "70_analyse_a_real_run",
}


@pytest.mark.parametrize("path", NBS, ids=lambda p: p.stem)
def test_the_defaults_are_the_parameters_cell_as_papermill_reads_it(path):
    assert defaults(path.stem) == {n: ast.literal_eval(d["default"]) for n, d in nbr.declared(path).items()}


def test_a_changed_size_is_named_and_the_claims_are_not_asserted(capsys):
    run = defaults("20_sft")
    assert at_defaults("20_sft", run) and capsys.readouterr().out == ""
    assert at_defaults("20_sft", {**run, "device": "cpu", "out_dir": "/tmp/x"})  # where a run goes is no size
    assert not at_defaults("20_sft", {**run, "steps": 5, "lr_lm": 1e-3})
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "this run changed steps=5 (default 160), lr_lm=0.001 (default 0.0005)" in line
    assert "not asserted" in line
    assert not at_defaults("20_sft", {**run, "smoke": True}) and "smoke=True (default False)" in capsys.readouterr().out
    assert at_defaults("20_sft", {"seed": 0})  # only the parameters given are compared
    assert changed("50_ablations", {**defaults("50_ablations"), "full": True}, modes=["full"]) == {}
    assert set(WHERE) == {"device", "out", "out_dir"}


def test_an_unreadable_course_copy_asserts_as_at_the_defaults(tmp_path, capsys):
    assert at_defaults("20_sft", {"steps": 5}, folder=tmp_path)
    assert "could not be read" in capsys.readouterr().out
    (tmp_path / "20_sft.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    assert at_defaults("20_sft", {"steps": 5}, folder=tmp_path) and "no cell tagged" in capsys.readouterr().out


@pytest.mark.parametrize("path", NBS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_last_cell_guards_its_claims_by_the_defaults_not_by_smoke(path):
    last = nbformat.read(str(path), as_version=4).cells[-1].source
    assert not re.search(r"\bnot smoke\b", last), "a claim held at the defaults is guarded by at_defaults"
    named = set(re.findall(r'at_defaults\("([^"]+)"', last))
    if path in SOLUTIONS:  # every solution asserts its answers' claims at its own defaults
        assert named == {f"solutions/{path.stem}"}, named
        assert defaults(f"solutions/{path.stem}") == {
            n: ast.literal_eval(d["default"]) for n, d in nbr.declared(path).items()
        }
    else:
        assert named == ({path.stem} if path.stem in CLAIMS else set()), named


def test_a_run_at_another_size_says_so_and_passes(tmp_path):
    """`r3lab notebooks run 20 -p steps 5` failed its default-size claim with an AssertionError; the claim's guard
    now prints the changed parameter and the lesson ends well, and at the defaults the claim is asserted."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("smoke: bool = False  # small\nsteps: int = 3  # optimizer steps, 1..10")
    params.metadata["tags"] = ["parameters"]
    claim = (
        f"from pathlib import Path\nfrom r3lab.course import at_defaults\n"
        f"if at_defaults('00_claim', globals(), folder=Path({str(tmp_path)!r})):\n"
        "    assert steps == 3, 'the claim holds at the default size only'\nprint('checks passed')"
    )
    nb.cells = [params, nbformat.v4.new_code_cell(claim)]
    nb.metadata["kernelspec"] = {"name": "r3lab", "display_name": "r3lab", "language": "python"}
    nbformat.write(nb, str(tmp_path / "00_claim.ipynb"))
    (r,) = nbr.run_series(
        ["00"], {"steps": 5}, profile="default", out=tmp_path / "run", folder=tmp_path, timeout=HANG_S
    )
    assert r.ok, r.error
    out = "".join(o.get("text", "") for c in nbformat.read(str(r.output), as_version=4).cells for o in c.outputs)
    assert "this run changed steps=5 (default 3): they are not asserted here" in out and "checks passed" in out
    nb.cells[1].source = claim.replace("steps == 3", "steps == 4")  # at the defaults the claim is asserted
    nbformat.write(nb, str(tmp_path / "00_claim.ipynb"))
    (r,) = nbr.run_series(["00"], {}, profile="default", out=tmp_path / "run2", folder=tmp_path, timeout=HANG_S)
    assert not r.ok and "the claim holds at the default size only" in r.error


def test_a_parameter_given_twice_is_refused_in_one_line(capsys, monkeypatch):
    from r3lab.cli.app import main

    monkeypatch.setattr("sys.argv", ["r3lab", "notebooks", "run", "20", "-p", "steps", "5", "-p", "steps", "7"])
    assert main() == 2  # as the `r3lab` process: one line, before any notebook runs
    err = capsys.readouterr().err
    assert "error: parameter 'steps' given more than once (-p / --raw): give each once" in err and err.count("\n") == 1
