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
