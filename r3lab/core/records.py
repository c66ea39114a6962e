"""JSON and JSONL records read with numbered errors: `read_records` (a JSON list or one record per line, each bad
record named by its line or record number and raised or collected in an `ImportReport`), `json_lines`, and
`check_unique` (an id, question or record given twice). Every importer reads its files through these."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .files import read_text
from .settings import short


def json_lines(lines: Iterable[str | bytes]) -> Iterator[tuple[int, dict | ValueError]]:
    """(line number, object) for each non-blank JSONL line; a ValueError in place of a line that is not
    one JSON object (or, given bytes, not UTF-8 text), so the caller decides whether to raise or to report it."""
    for n, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    n,
                    ValueError(
                        f"not UTF-8 text (byte {line[e.start]:#04x} at column {e.start + 1}): save the file as UTF-8"
                    ),
                )
                continue
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as e:
            yield n, ValueError(f"not valid JSON ({e})")
            continue
        yield n, d if isinstance(d, dict) else ValueError("a line must hold one JSON object")


def check_unique(seen: dict, key, n: int, what: str, unit: str = "line") -> None:
    """ValueError when `key` came before (`seen` maps each key to the line or record that first held it): a
    duplicate sample id, question or record would count twice in training and scoring, silently."""
    if key in seen:
        raise ValueError(f"{what} {short(key)} repeats {unit} {seen[key]}: drop one of the two, or give it another id")
    seen[key] = n


@dataclass
class ImportReport:
    """Records read, and every bad record with its line or record number and the reason."""

    path: str
    kept: int = 0
    errors: list = field(default_factory=list)  # (line or record number, message)
    unit: str = "line"  # "line" for JSONL, "record" for a JSON list

    def __str__(self):
        head = f"{self.path}: imported {self.kept} records, {len(self.errors)} bad"
        return "\n".join([head] + [f"  {self.unit} {n}: {m}" for n, m in self.errors])

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def read_records(path: Path, rep: ImportReport, errors: str):
    """(line or record number, dict) for a JSON list or a JSONL file; unparsable lines are reported."""
    if errors not in ("raise", "report"):
        raise ValueError(f"errors must be 'raise' or 'report', got {short(errors)}")
    text = read_text(path)
    empty = ValueError(f"{path} holds no records: expected a JSON list of records or one JSON record per line")
    if not text.strip():  # importing nothing without a word would hide a wrong path or a failed export
        raise empty
    if text.lstrip().startswith("["):
        rep.unit = "record"
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not a valid JSON list ({e})") from None
        if not data:
            raise empty
        records = (
            (n, rec if isinstance(rec, dict) else ValueError("a record must be a JSON object"))
            for n, rec in enumerate(data, 1)
        )
    else:
        records = json_lines(text.splitlines())
    seen: dict = {}
    for n, rec in records:
        if not isinstance(rec, ValueError):
            try:  # the same record twice is never meant: it would weigh double
                check_unique(seen, json.dumps(rec, sort_keys=True), n, "this record", rep.unit)
            except ValueError:
                rec = ValueError(f"it repeats {rep.unit} {seen[json.dumps(rec, sort_keys=True)]} exactly")
        if isinstance(rec, ValueError):
            bad_record(rep, errors, path, n, rec)
            continue
        yield n, rec


def bad_record(rep: ImportReport, errors: str, path: Path, n: int, e: Exception):
    if errors == "raise":
        typ = FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError
        raise typ(
            f"{path}: {rep.unit} {n}: {e}; fix it, or import with errors='report' to collect bad records"
        ) from None
    rep.errors.append((n, str(e)))
