"""Safe file writes and numbered JSON records (r3lab.core.files)."""

import os

import pytest

from r3lab.core.files import FolderLock, atomic_write_text, file_lock, file_stem, plain_mode
from r3lab.core.records import ImportReport, json_lines, read_records


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    f = tmp_path / "state.json"
    atomic_write_text(f, "old")

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(f, "new")
    monkeypatch.undo()
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_records_come_numbered_and_bad_ones_are_named_or_collected(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text('{"a": 1}\n\nnot json\n[1]\n{"a": 2}\n')
    assert [n for n, d in json_lines(f.read_text().splitlines()) if isinstance(d, dict)] == [1, 5]
    rep = ImportReport(str(f))
    assert [r for _, r in read_records(f, rep, "report")] == [{"a": 1}, {"a": 2}]
    assert [n for n, _ in rep.errors] == [3, 4] and "line 3: not valid JSON" in str(rep)
    with pytest.raises(ValueError, match=r"rows.jsonl: line 3: not valid JSON"):
        list(read_records(f, ImportReport(str(f)), "raise"))
    (tmp_path / "list.json").write_text('[{"a": 1}, 2]')
    rep = ImportReport("list.json")
    assert [r for _, r in read_records(tmp_path / "list.json", rep, "report")] == [{"a": 1}]
    assert rep.unit == "record" and rep.errors[0][0] == 2
    assert file_stem("v*/img 1.jpg") == "v__img_1.jpg"


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_a_file_lock_held_too_long_is_a_timeout_naming_it(tmp_path):
    lock = tmp_path / ".times.lock"
    with file_lock(lock):  # a second open file is a second holder, as another process would be
        with pytest.raises(TimeoutError, match=r"\.times\.lock stayed locked by another process for 0\.2 s"):
            with file_lock(lock, timeout=0.2):
                pass
    with file_lock(lock, timeout=0.2):  # given back: taken at once
        pass


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_a_folder_lock_takes_away_only_the_empty_folder_it_made(tmp_path):
    with FolderLock(tmp_path / "new"):  # a run refused before it wrote anything
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()
    with FolderLock(tmp_path / "used"):
        (tmp_path / "used" / "results.json").write_text("{}")
    (tmp_path / "old").mkdir()
    with FolderLock(tmp_path / "old"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "used"]


def test_plain_mode_follows_the_umask(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"")
    f.chmod(0o600)
    old = os.umask(0o027)
    try:
        plain_mode(f)
    finally:
        os.umask(old)
    assert f.stat().st_mode & 0o777 == 0o640
