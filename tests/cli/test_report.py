"""`r3lab eval --audit`, `r3lab report audit` and `r3lab report diff`: the files each writes, text from the data
escaped, one self-contained page that opens in Chromium (crops decoded, sortable, nothing fetched)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from r3lab.cli.app import main
from r3lab.core import env
from r3lab.recipe.shipping import SHIPPED
from r3lab.testing.mini_runs import write_deepeyes_eval

HOSTILE = 'Which <b>pattern</b> & "mark" <script>window.hostile = 1</script>?'
CHROMIUM = Path(os.environ.get("R3LAB_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two audited evaluations of the same questions: the shipped SFT and R-GRPO checkpoints (both crop)."""
    tmp = tmp_path_factory.mktemp("report")
    data = tmp / "data"
    assert main(["data", "build", "--out", str(data), "--n", "3", "--seed", "5", "--filter", "false"]) == 0
    lines = (data / "samples.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["question"] = HOSTILE
    (data / "samples.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    out = []
    for name in ("r3-tiny-sft", "r3-tiny-rgrpo"):
        run = tmp / name
        assert (
            main(
                [
                    "eval",
                    "--policy",
                    str(SHIPPED / name),
                    "--data",
                    str(data),
                    "--audit",
                    "--audit-k",
                    "2",
                    "--necessity",
                    "false",
                    "--out",
                    str(run),
                ]
            )
            == 0
        )
        out.append(run)
    return out


def test_eval_audit_writes_the_run_and_its_page(runs, capsys):
    run = runs[0]
    assert {p.name for p in run.iterdir()} >= {"results.json", "trajectories.jsonl", "questions.jsonl", "report.html"}
    row = json.loads((run / "results.json").read_text())["rows"]["all"]
    assert {"acc_format_only", "acc_format_only_chance", "tool_only", "tool_only_chance"} <= set(row)
    page = (run / "report.html").read_text()
    assert "<script>window.hostile" not in page and "&lt;script&gt;window.hostile" in page  # escaped, never run
    assert "<script src" not in page and "http://" not in page and "https://" not in page  # nothing fetched


def test_report_audit_writes_the_page_anew_and_diff_compares_two_runs(runs, tmp_path, capsys):
    (runs[0] / "report.html").unlink()
    assert main(["report", "audit", str(runs[0])]) == 0 and (runs[0] / "report.html").is_file()
    out = tmp_path / "diff"
    assert main(["report", "diff", str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    diff = json.loads((out / "diff.json").read_text())
    assert diff["common"] == 3 and diff["a"] == str(runs[0]) and "all" in diff["families"]
    assert "questions differ" in capsys.readouterr().out


def test_report_audit_of_an_imported_run_from_its_logs_alone(tmp_path, capsys):
    path = write_deepeyes_eval(tmp_path / "de", n=3)
    out = tmp_path / "audit"
    assert (
        main(
            [
                "report",
                "audit",
                str(path),
                "--format",
                "deepeyes",
                "--image-root",
                str(path.parent / "images"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["rows"]["all"]["crop_iou"] > 0.5 and res["policy"] is None
    assert "| all | 3 |" in capsys.readouterr().out
    assert "data:image/png;base64" in (out / "report.html").read_text()
    with pytest.raises(FileExistsError, match="already holds"):  # a second audit into the same folder is refused
        main(
            [
                "report",
                "audit",
                str(path),
                "--format",
                "deepeyes",
                "--image-root",
                str(path.parent / "images"),
                "--out",
                str(out),
            ]
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["report", "diff", str(tmp_path / "nothing"), str(out)])


def _browser():
    if not CHROMIUM.exists():
        if env.IN_CI:
            pytest.fail(f"{CHROMIUM} not found (CI must provide it: `make setup` installs chromium)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_the_report_opens_in_chromium_whole_and_sorts(runs, tmp_path):
    sync = _browser()
    profile = tmp_path / "profile"
    with sync.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = ctx.new_page()
            fetched = []
            page.on("request", lambda r: fetched.append(r.url))
            page.goto((runs[0] / "report.html").as_uri(), wait_until="load")
            images = page.evaluate("() => [...document.images].map(i => [i.complete, i.naturalWidth])")
            assert images and all(ok and w > 0 for ok, w in images)  # every crop decoded
            assert page.evaluate("() => window.hostile") is None  # the question's script is text, never run
            assert [u for u in fetched if not u.startswith("data:")] == [(runs[0] / "report.html").as_uri()]
            table = page.locator("table.sortable").first  # the numbers per family
            ids = lambda: table.locator("tbody tr td:first-child").all_inner_texts()  # noqa: E731
            before = ids()
            table.locator("th").first.click()
            up = ids()
            table.locator("th").first.click()
            assert up == sorted(before) and ids() == sorted(before, reverse=True)
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


def test_an_eval_folder_without_questions_is_read_from_its_trajectories(runs, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("results.json", "trajectories.jsonl"):  # an evaluation written before questions.jsonl existed
        shutil.copy(runs[0] / name, old / name)
    out = tmp_path / "diff"
    assert main(["report", "diff", str(old), str(runs[0]), "--out", str(out)]) == 0
    diff = json.loads((out / "diff.json").read_text())
    assert diff["common"] == 3 and diff["changed"] == []  # the same rollouts, scored by the same rule
    assert main(["report", "audit", str(old), "--out", str(tmp_path / "audit")]) == 0
    with pytest.raises(ValueError, match="training log"):
        main(["report", "audit", str(runs[0] / "results.json"), "--format", "eval", "--out", str(tmp_path / "x")])


def test_a_bad_questions_file_is_named_with_its_line(tmp_path):
    for name, text, match in (
        ("a", '{"sample_id": "q0", "own": {}}\nnot json\n', r"questions.jsonl, line 2: not JSON"),
        ("b", '{"own": {}}\n', r"line 1: a question record needs 'sample_id'"),
    ):
        run = tmp_path / name
        run.mkdir()
        (run / "questions.jsonl").write_text(text)
        with pytest.raises(ValueError, match=match):
            main(["report", "diff", str(run), str(run), "--out", str(tmp_path / "d")])
