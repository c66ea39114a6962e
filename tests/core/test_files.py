"""Safe file writes and numbered JSON records (r3lab.core.files)."""
import os

import pytest

from r3lab.core.files import ImportReport, atomic_write_text, file_stem, json_lines, read_records


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
