"""`r3lab dashboard` writes one page for a training log or a run, and says whether the crop tool collapsed."""
from r3lab.cli.app import main
from r3lab.testing.mini_runs import write_agent_loop, write_training_log
from r3lab.testing import tiny_policy


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
    assert main(["dashboard", str(path), "--tokenizer", str(tmp_path / "tok"), "--out", str(out),
                 "--window", "1"]) == 0
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
    assert main(["train", "sft", "--data", str(train), "--steps", "2", "--batch-size", "2", "--out-dir", str(run),
                 "--necessity-every", "2", "--necessity-data", str(held), "--necessity-n", "1"]) == 0
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "tool_gain" in r] == [2]
    assert main(["dashboard", str(run)]) == 0
    assert "tool necessity" in (run / "dashboard.html").read_text()
