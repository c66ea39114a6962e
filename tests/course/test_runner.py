import json
import subprocess
import sys

import nbformat
import pytest

from r3lab.course import runner as nbr

from .. import HANG_S

PARAMS = (
    "smoke: bool = False  # tiny sizes\nlr: float = 0.001  # learning rate\n"
    'name: str = "a"  # a name\nsteps: int = 3  # steps'
)


def _nb(path, body, params=PARAMS):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "r3lab", "display_name": "r3lab", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(
        d / "00_ok.ipynb",
        "from r3lab.course import report\n"
        "import matplotlib.pyplot as plt\n"
        "from IPython.display import display\nfig = plt.figure(); plt.plot([1, 2]); display(fig)\n"
        "report(lr=lr, steps=steps, smoke=smoke)",
    )
    _nb(d / "10_fails.ipynb", "x = 1\nraise RuntimeError('lesson broke on purpose')")
    return d


def test_unknown_parameter_is_refused_naming_the_real_ones(folder):
    with pytest.raises(nbr.ParameterError) as e:
        nbr.run_series(["00"], {"lerning_rate": 1e-3}, folder=folder)
    msg = str(e.value)
    assert "lerning_rate" in msg and "lr: float" in msg and "steps: int" in msg and "smoke: bool" in msg


def test_mistyped_parameter_is_refused(folder):
    with pytest.raises(nbr.ParameterError, match="must be int"):
        nbr.run_series(["00"], {"steps": "many"}, folder=folder)
    with pytest.raises(nbr.ParameterError, match="must be bool"):
        nbr.run_series(["00"], {"smoke": 1}, folder=folder)
    # ints are fine for floats, like papermill's own typing
    assert nbr.check_parameters(folder / "00_ok.ipynb", {"lr": 1}) == {"lr": 1.0}


def test_parse_value_like_papermill():
    assert nbr.parse_value("True") is True and nbr.parse_value("None") is None
    assert nbr.parse_value("3") == 3 and nbr.parse_value("1e-3") == 1e-3 and nbr.parse_value("abc") == "abc"


def test_series_runs_writes_index_and_reports_failures(folder, tmp_path):
    out = tmp_path / "out"
    results = nbr.run_series(None, {"steps": 5}, profile="smoke", out=out, timeout=HANG_S, folder=folder)
    ok, bad = results
    assert ok.ok and ok.numbers == {"lr": 0.001, "steps": 5, "smoke": True}
    assert list(ok.numbers) == ["lr", "steps", "smoke"]  # the order the notebook reported them in
    assert ok.figures and ok.figures[0].read_bytes()[:4] == b"\x89PNG"
    assert not bad.ok and "lesson broke on purpose" in bad.error and "RuntimeError" in bad.error
    page = (out / "index.html").read_text()
    assert "1/2 notebooks passed" in page and "00_ok" in page and "lesson broke on purpose" in page
    assert json.loads((out / "results.json").read_text())[0]["numbers"]["steps"] == 5
    assert (out / "00_ok" / "00_ok.ipynb").exists()
    # the page is inside the run folder and the index links it; no internal line is printed in the notebook
    assert ok.page == out / "00_ok" / "00_ok.html" and 'href="00_ok/00_ok.html"' in page
    text = ok.page.read_text()
    assert "data:image/png;base64" in text and "R3LAB_REPORT" not in text and "r3lab-report" in text
    assert not ok.oversize and ok.page.stat().st_size < nbr.MAX_BYTES
    assert json.loads((out / "results.json").read_text())[0]["page"] == "00_ok/00_ok.html"


def test_headless_kernel_and_headline(folder, tmp_path):
    _nb(
        folder / "20_sft.ipynb",
        "import os\nfrom r3lab.course import report\n"
        "report(read_one_before=0.5, read_one_after=0.75, headless=os.environ.get('R3LAB_HEADLESS'),"
        " bars=os.environ.get('TQDM_DISABLE'))",
    )
    (r,) = nbr.run_series(["20"], out=tmp_path / "o", timeout=HANG_S, folder=folder)
    assert r.ok and r.numbers["headless"] == "1" and r.numbers["bars"] == "1"
    assert nbr.headline(r) == ["read_one: 0.5 → 0.75"]
    assert "<b>read_one: 0.5 → 0.75</b>" in (tmp_path / "o" / "index.html").read_text()
    assert "R3LAB_HEADLESS" not in __import__("os").environ  # restored after the run


def test_cli_exit_codes(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(nbr, "NOTEBOOKS", folder)
    from r3lab.cli.app import main

    assert main(["notebooks", "run", "00", "-p", "lerning_rate", "1e-3"]) == 2
    assert "Its parameters are: smoke: bool" in capsys.readouterr().err
    assert main(["notebooks", "run", "10", "--out", str(tmp_path / "o"), "--timeout", "60"]) == 1
    assert main(["notebooks", "run", "00", "--out", str(tmp_path / "o2"), "--profile", "smoke"]) == 0
    assert "index: " in capsys.readouterr().out


def test_cli_refuses_unknown_parameter_in_a_subprocess(folder, tmp_path):
    code = (
        "import sys; from pathlib import Path; import r3lab.course.runner as n; "
        f"n.NOTEBOOKS = Path({str(folder)!r}); from r3lab.cli.app import main; "
        "sys.exit(main(['notebooks', 'run', '00', '-p', 'lerning_rate', '1e-3']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 2
    assert "no parameter 'lerning_rate'" in out.stderr and "lr: float" in out.stderr


def test_find_notebooks_errors(folder):
    with pytest.raises(FileNotFoundError, match="known: 00_ok, 10_fails"):
        nbr.find_notebooks(["99"], folder)


def test_start_policy_picks_given_shipped_or_untrained(tmp_path):
    from r3lab.course.lesson import start_policy

    policy, source = start_policy(smoke=True)
    assert source == "" and policy.model.config.vision_config.patch_size == 7  # the recipe's r3-tiny
    policy, source = start_policy()
    assert source.endswith("r3-tiny-sft")  # the shipped checkpoint
    with pytest.raises(FileNotFoundError, match="expected a local folder"):
        start_policy(str(tmp_path / "typo"), smoke=True)  # a given path is never silently replaced


def test_a_nan_parameter_or_a_timeout_below_one_second_is_refused(folder):
    with pytest.raises(nbr.ParameterError, match="'lr' must be a finite number, got nan"):
        nbr.run_series(["00"], {"lr": nbr.parse_value("nan")}, folder=folder)
    for bad in (-5, 0):
        with pytest.raises(nbr.ParameterError, match=f"timeout .* >= 1, got {bad}"):
            nbr.run_series(["00"], {}, timeout=bad, folder=folder)


def test_collect_replaces_an_earlier_runs_figures(tmp_path):
    """A run whose cells moved (e.g. a failed run's extra header cell) must not leave its figures beside the new
    ones."""
    import base64

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 8).decode()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    nb.cells = [cell]
    figs = tmp_path / "figures"
    figs.mkdir()
    (figs / "cell07_1.png").write_bytes(b"old")
    (figs / "notes.txt").write_text("kept: not a figure the runner wrote")
    _, written = nbr.collect(nb, figs)
    assert sorted(p.name for p in figs.iterdir()) == ["cell00_0.png", "notes.txt"]
    assert written == [figs / "cell00_0.png"]


def _one(tmp_path, params: str, body: str = "print(steps)"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "r3lab", "display_name": "r3lab", "language": "python"}
    path = tmp_path / "20_sft.ipynb"  # named as a lesson: the smoke table's sizes apply
    nbformat.write(nb, str(path))
    return path


def test_numbers_outside_their_stated_range_are_refused_with_it(tmp_path):
    path = _one(
        tmp_path,
        "smoke: bool = False  # small\nsteps: int = 10  # optimizer steps, 1..2000\n"
        "lr: float = 0.001  # learning rate, 0..1\nseed: int = 0  # seeds",
    )
    assert nbr.bounds("optimizer steps, 1..2000") == (1, 2000) and nbr.bounds("seeds") is None
    assert nbr.check_parameters(path, {"steps": 2000, "lr": 0.5}) == {"steps": 2000, "lr": 0.5}
    with pytest.raises(
        nbr.ParameterError,
        match=r"'steps' must be within 1\.\.2000 \(optimizer steps, 1\.\.2000\), "
        r"got 100000000000000000000",
    ):
        nbr.check_parameters(path, {"steps": 10**20})
    with pytest.raises(nbr.ParameterError, match=r"within 1\.\.2000.*got -5"):
        nbr.check_parameters(path, {"steps": -5})
    with pytest.raises(nbr.ParameterError, match=r"'lr' must be within 0\.0\.\.1\.0"):
        nbr.check_parameters(path, {"lr": 1e20})
    assert nbr.check_parameters(path, {"seed": 10**9}) == {"seed": 10**9}  # no range stated: none checked


def test_smoke_mode_names_the_given_parameters_it_replaces(tmp_path, capsys):
    path = _one(
        tmp_path,
        "smoke: bool = False  # small\nsteps: int = 10  # optimizer steps, 1..2000\n"
        "beta: float = 0.0  # KL weight (default mode only), 0..1",
    )
    assert nbr.smoke_replaces(path, {"steps": 50, "beta": 0.1}) == {
        "steps": (50, nbr.SMOKE["20_sft"]["steps"]),
        "beta": (0.1, "not used in smoke mode"),
    }
    assert nbr.smoke_replaces(path, {"steps": nbr.SMOKE["20_sft"]["steps"]}) == {}  # the same value: nothing replaced
    (r,) = nbr.run_series(["20"], {"steps": 50}, profile="smoke", out=tmp_path / "run", folder=tmp_path, timeout=HANG_S)
    assert r.ok and r.replaced == {"steps": (50, nbr.SMOKE["20_sft"]["steps"])}
    assert "smoke mode replaces the given steps=50 (it runs 4)" in capsys.readouterr().out
    row = json.loads((tmp_path / "run" / "results.json").read_text())[0]
    assert row["replaced"] == {"steps": [50, 4]} and row["cpu_seconds"] > 0 and row["machine"]["cpus"] >= 1
    assert "smoke mode replaced steps=50" in (tmp_path / "run" / "index.html").read_text()
    (r,) = nbr.run_series(
        ["20"], {"steps": 50}, profile="default", out=tmp_path / "run2", folder=tmp_path, timeout=HANG_S
    )
    assert r.ok and r.replaced == {}  # a default run keeps every given value


def test_the_index_links_the_solutions_run_into_the_same_folder(tmp_path):
    lessons, sols = tmp_path / "nbs", tmp_path / "nbs" / "solutions"
    sols.mkdir(parents=True)
    _nb(lessons / "00_a.ipynb", "print(1)")
    _nb(sols / "00_a.ipynb", "print(2)")
    out = tmp_path / "run"
    (r,) = nbr.run_series(None, profile="smoke", out=out, folder=lessons, timeout=HANG_S)
    assert r.ok and "solution</a>" not in (out / "index.html").read_text()
    (s,) = nbr.run_series(None, profile="smoke", out=out / "solutions", folder=sols, timeout=HANG_S)
    assert s.ok and nbr.refresh_index(out) == (out / "index.html").resolve()
    page = (out / "index.html").read_text()
    assert 'href="solutions/00_a/00_a.html">solution</a>' in page and "00_a.html" in page
    assert nbr.refresh_index(tmp_path / "nothing") is None


def test_the_kernel_logs_errors_only(tmp_path, capfd):
    """ipykernel warns on every start that its local sockets are unencrypted: ten such lines in `make main` alarm a
    class for nothing, so the runner's kernels log errors only; a failing cell still shows as the lesson's error."""
    d = tmp_path / "nbs"
    d.mkdir()
    _nb(d / "00_ok.ipynb", "x = 1")
    nbr.ensure_kernel()
    res = nbr.run_notebook(d / "00_ok.ipynb", tmp_path / "run", {})
    assert res.ok, res.error
    err = capfd.readouterr().err
    assert "[IPKernelApp] WARNING" not in err and "without encryption" not in err, err
