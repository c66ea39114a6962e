"""Each lesson's quiz: three to five questions, one right choice each, and why for every choice."""

import pytest

from r3lab.course import quizzes as q
from r3lab.course.syllabus import LESSONS


def test_every_lesson_has_three_to_five_questions_explained_choice_by_choice():
    bank = q.load()
    assert set(bank) == {x.notebook for x in LESSONS}, "a quiz per lesson, named by its notebook"
    for lesson, questions in bank.items():
        assert 3 <= len(questions) <= 5, lesson
        for question in questions:
            assert len(question.choices) >= 3 and sum(c.right for c in question.choices) == 1, question.text
            assert all(len(c.why) > 20 for c in question.choices), question.text


def test_answer_says_right_or_wrong_and_explains_every_choice(capsys):
    first = q.questions("20")[0]
    right = "abcdefgh"[[c.right for c in first.choices].index(True)]
    wrong = next(letter for letter, c in zip("abcdefgh", first.choices) if not c.right)
    assert q.answer("20", 1, right) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ right") and all(c.why in out for c in first.choices)
    assert q.answer("20_sft", 1, wrong) is False and capsys.readouterr().out.startswith("✗ not this one")
    for args, said in (
        (("20", 99, "a"), "✗ the 20 quiz has questions 1.."),
        (("20", 1, "z"), "choices a, b"),
        (("20", 1, None), "not None"),
        (("20", "1", "a"), "not '1'"),
        (("nope", 1, "a"), "no quiz"),
        ((None, 1, "a"), "no quiz"),
    ):
        assert q.answer(*args) is False  # a line and how to call it, never a traceback
        out = capsys.readouterr().out
        assert out.startswith("✗") and said in out and 'answer("20", 1, "a")' in out, out
    assert q.answer("20", 1, right.upper()) is True  # a letter in capitals is the same letter
    with pytest.raises(KeyError, match="no quiz"):
        q.quiz("99")


def test_the_quiz_shows_as_html_with_answers_folded():
    page = q.quiz("00")._repr_html_()
    assert page.count("<details>") == len(q.questions("00")) and "<code>Frame.to_input</code>" in page
    assert "answer('00', question" in page and "<script" not in page


def test_a_malformed_bank_is_refused_naming_the_line(tmp_path):
    bad = tmp_path / "quizzes.md"
    bad.write_text("# 00_a\n\n## Q?\n- [x] one\n  why one is right\n- [x] two\n  why two\n")
    with pytest.raises(ValueError, match="exactly one marked"):
        q.load(bad)
    bad.write_text("# 00_a\n\n## Q?\n- [x] one\n- [ ] two\n  why two\n")
    with pytest.raises(ValueError, match="a why line"):
        q.load(bad)
    bad.write_text("# 00_a\n\nstray text\n")
    with pytest.raises(ValueError, match=r"quizzes.md:3"):
        q.load(bad)


def test_the_right_answers_are_spread_over_the_letters():
    from collections import Counter

    letters = Counter("abcdefgh"[[c.right for c in x.choices].index(True)] for qs in q.load().values() for x in qs)
    total = sum(letters.values())
    assert max(letters.values()) <= 0.4 * total, letters  # a student cannot score by always picking one letter
    assert len(letters) >= 4, letters


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
# words a quiz may use without its lesson defining them: the course's common vocabulary, said in lesson 00-10
COMMON = {"SFT", "RL", "GPU", "CPU", "VLM", "VQA", "JSON", "HTML"}


def _terms(text: str) -> set[str]:
    """The technical terms of a quiz's text: acronyms and code names (`...`), without their call arguments."""
    import re

    acronyms = set(re.findall(r"\b(?:[A-Z]+[a-z]*[A-Z][A-Za-z]*|[A-Z]{2,})(?:-[A-Z][A-Za-z]*)?\b", text))
    code = {c.split("(")[0].split("=")[0].strip() for c in re.findall(r"`([^`]+)`", text)}
    return (acronyms | {c for c in code if re.fullmatch(r"[A-Za-z_][\w.]*", c)}) - COMMON


def test_every_term_a_quiz_uses_is_in_its_lesson_or_the_glossary():
    import json
    import re

    glossary = (ROOT / "docs" / "instructor" / "glossary.md").read_text()
    defined = {t.strip() for head in re.findall(r"^\*\*(.+?)\.\*\*", glossary, re.M) for t in re.split(r"[()`]", head)}
    missing = []
    for lesson, qs in q.load().items():
        nb = json.loads((ROOT / "notebooks" / f"{lesson}.ipynb").read_text())
        body = "\n".join("".join(c["source"]) for c in nb["cells"])
        for x in qs:
            for term in _terms(" ".join([x.text] + [c.text + " " + c.why for c in x.choices])):
                if term not in body and term not in defined and term not in glossary:
                    missing.append(f"{lesson}: {term!r} ({x.text[:50]})")
    assert not missing, "terms no lesson text or glossary entry explains:\n" + "\n".join(missing)
