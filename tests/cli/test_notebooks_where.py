"""`r3lab notebooks where`: where the course is read from (a clone's folders, else a wheel's), and `--copy DIR`."""

from pathlib import Path

import pytest

from r3lab.cli.app import main
from r3lab.core import env


def test_where_names_the_folders_and_copy_keeps_what_is_there(tmp_path, capsys):
    assert main(["notebooks", "where"]) == 0
    out = capsys.readouterr().out
    assert f"lessons:     {env.NOTEBOOKS} (10 notebooks)" in out and str(env.ASSETS / "checkpoints") in out
    mine = tmp_path / "course" / "00_build_vlir.ipynb"
    mine.parent.mkdir()
    mine.write_text("my edits")
    assert main(["notebooks", "where", "--copy", str(tmp_path / "course")]) == 0
    assert mine.read_text() == "my edits" and "kept 1 already there" in capsys.readouterr().out
    assert len(list((tmp_path / "course").glob("[0-9]*.ipynb"))) == 10
    assert len(list((tmp_path / "course" / "solutions").glob("[0-9]*.ipynb"))) == 10
    with pytest.raises(NotADirectoryError, match="name a folder"):
        main(["notebooks", "where", "--copy", str(mine)])


def test_outside_a_clone_the_wheels_folders_are_used(tmp_path, monkeypatch):
    share = tmp_path / "prefix" / "share" / "r3lab"
    (share / "assets").mkdir(parents=True)
    monkeypatch.setattr(env, "installed_share", lambda: share)
    monkeypatch.setattr(env, "REPO_ROOT", tmp_path / "site-packages")  # a wheel's package: no assets/ beside it
    assert env._course_dir("assets") == share / "assets"
    monkeypatch.setattr(env, "REPO_ROOT", Path(__file__).resolve().parents[2])  # a clone: its own folder first
    assert env._course_dir("assets") == env.REPO_ROOT / "assets"
