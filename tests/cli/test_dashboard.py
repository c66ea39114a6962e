"""`r3lab dashboard` writes one page for a training log or a run, and says whether the crop tool collapsed."""

from r3lab.cli.app import main
from r3lab.testing import tiny_policy
from r3lab.testing.mini_runs import write_agent_loop, write_training_log


def test_dashboard_of_a_training_folder(tmp_path, capsys):
    write_training_log(tmp_path / "run" / "log.jsonl", collapse=True)
    assert main(["dashboard", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "dashboard.html").stat().st_size > 100_000
    assert "crop collapse" in capsys.readouterr().out


def test_dashboard_of_a_verl_run_with_its_tokenizer(tmp_path, capsys):
    policy = tiny_policy()
    path = write_agent_loop(tmp_path, policy, steps=2, per_step=2, collapse=False)
    policy.tokenizer.save_pretrained(tmp_path / "tok")
    out = tmp_path / "page.html"
    assert main(["dashboard", str(path), "--tokenizer", str(tmp_path / "tok"), "--out", str(out), "--window", "1"]) == 0
    assert out.is_file() and "no collapse" in capsys.readouterr().out


def test_train_with_necessity_every_then_the_dashboard_draws_tool_necessity(tmp_path, capsys):
    import json

    import pytest

    from r3lab.data.dataset import save_dataset
    from r3lab.testing import toy_samples

    view = tiny_policy().view
    train, held = (save_dataset(toy_samples(2, view), tmp_path / name, progress=False) for name in ("train", "held"))
    with pytest.raises(ValueError, match="--necessity-data"):
        main(["train", "sft", "--data", str(train), "--steps", "1", "--necessity-every", "1"])
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "sft",
                "--data",
                str(train),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--out-dir",
                str(run),
                "--necessity-every",
                "2",
                "--necessity-data",
                str(held),
                "--necessity-n",
                "1",
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "tool_gain" in r] == [2]
    assert main(["dashboard", str(run)]) == 0
    assert "tool necessity" in (run / "dashboard.html").read_text()


def test_r3lab_eval_then_the_dashboard_of_its_folders(tmp_path, capsys):
    import re
    import shutil

    import pytest

    from r3lab.data.dataset import save_dataset
    from r3lab.testing import toy_samples

    held = save_dataset(toy_samples(2, tiny_policy().view), tmp_path / "held", progress=False)
    evals = tmp_path / "evals"  # one evaluation per checkpoint, named after its step (a fresh r3-tiny here)
    assert (
        main(
            [
                "eval",
                "--data",
                str(held),
                "--max-new-tokens",
                "6",
                "--max-segment-tokens",
                "6",
                "--out",
                str(evals / "step_000005"),
            ]
        )
        == 0
    )
    shutil.copytree(evals / "step_000005", evals / "step_000010")  # a second checkpoint's folder, as cheap
    assert main(["dashboard", str(evals / "step_000010"), str(evals / "step_000005")]) == 0
    page = (evals / "dashboard.html").read_text()
    assert "tool necessity per family (step 10)" in page and "tool_harm" in page
    assert not re.search(r"not measured in this run: [^<]*tool necessity", page)
    (evals / "other").mkdir()
    with pytest.raises(FileNotFoundError, match="other/results.json does not exist"):
        main(["dashboard", str(evals / "step_000005"), str(evals / "other")])
    capsys.readouterr()
