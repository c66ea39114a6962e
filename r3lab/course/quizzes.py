"""Each lesson's quiz: questions with an explanation for every choice, from one file (`quizzes.md`).

    quiz("20")              # shows the lesson's questions (HTML in a notebook; each answer folded away)
    answer("20", 2, "b")    # says whether b is right, and why each choice is right or wrong

`quizzes.md` holds every lesson's questions: `# <notebook stem>` starts a lesson, `## <question>` a question, and
each choice is a `- [x]` (right) or `- [ ]` line followed by an indented line saying why. The instructor's quiz
page is drawn from the same file (`quiz_markdown`).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.settings import short

BANK = Path(__file__).with_name("quizzes.md")
LETTERS = "abcdefgh"


@dataclass(frozen=True)
class Choice:
    text: str
    right: bool
    why: str


@dataclass(frozen=True)
class Question:
    text: str
    choices: tuple[Choice, ...]


def load(path: Path = BANK) -> dict[str, list[Question]]:
    """Every lesson's questions, in the file's order. A malformed entry is an error naming its line."""
    out: dict[str, list[Question]] = {}
    lesson, question, choices = None, None, []

    def close(line_no: int):
        if question is None:
            return
        if not choices or sum(c.right for c in choices) != 1 or any(not c.why for c in choices):
            raise ValueError(
                f"{path}: the question before line {line_no} ({question[:50]!r}) needs choices, exactly "
                "one marked [x], and a why line under each"
            )
        out[lesson].append(Question(question, tuple(choices)))

    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines + ["# end"], 1):
        if line.startswith("# ") or line.startswith("## "):
            close(i)
            question, choices = None, []
            if line.startswith("# "):
                lesson = line[2:].strip()
                out.setdefault(lesson, [])
            else:
                if lesson is None:
                    raise ValueError(f"{path}:{i}: a question before any '# <lesson>' heading")
                question = line[3:].strip()
        elif m := re.match(r"^- \[( |x)\] (.+)$", line):
            if question is None:
                raise ValueError(f"{path}:{i}: a choice outside a question")
            choices.append(Choice(m[2].strip(), m[1] == "x", ""))
        elif line.startswith("  ") and line.strip() and choices:
            last = choices[-1]
            choices[-1] = Choice(last.text, last.right, (last.why + " " + line.strip()).strip())
        elif line.strip():
            raise ValueError(f"{path}:{i}: expected '# lesson', '## question', '- [x] choice' or an indented why line")
    out.pop("end", None)
    return out


def questions(lesson: str) -> list[Question]:
    """A lesson's questions by number prefix ("20") or notebook stem."""
    bank = load()
    hits = [k for k in bank if k == lesson or k.startswith(lesson + "_")]
    if len(hits) != 1:
        raise KeyError(f"no quiz for {short(lesson)}; quizzes: {', '.join(bank)}")
    return bank[hits[0]]


def _md(text: str) -> str:
    """Inline code and emphasis of a quiz's text as HTML (everything else escaped)."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


class Quiz:
    """A lesson's quiz as a notebook shows it: the questions and choices, each answer folded under "answer"."""

    def __init__(self, lesson: str):
        self.lesson, self.questions = lesson, questions(lesson)

    def _repr_html_(self) -> str:
        parts = ['<div class="r3lab-quiz">']
        for n, q in enumerate(self.questions, 1):
            items = "".join(f"<li><b>{LETTERS[i]}</b>. {_md(c.text)}</li>" for i, c in enumerate(q.choices))
            whys = "".join(
                f"<li><b>{LETTERS[i]}</b> ({'right' if c.right else 'wrong'}): {_md(c.why)}</li>"
                for i, c in enumerate(q.choices)
            )
            parts.append(
                f'<p><b>{n}.</b> {_md(q.text)}</p><ul style="list-style:none">{items}</ul>'
                f"<details><summary>answer</summary><ul>{whys}</ul></details>"
            )
        parts.append(f'<p><small>Answer in code: <code>answer({self.lesson!r}, question, "a")</code>.</small></p>')
        return "".join(parts) + "</div>"

    def __str__(self) -> str:
        return "\n\n".join(
            f"{n}. {q.text}\n" + "\n".join(f"   {LETTERS[i]}. {c.text}" for i, c in enumerate(q.choices))
            for n, q in enumerate(self.questions, 1)
        )

    __repr__ = __str__


def quiz(lesson: str) -> Quiz:
    """The quiz of `lesson` ("20" or "20_sft"), shown as HTML in a notebook."""
    return Quiz(lesson)


def answer(lesson: str, question: int, choice: str) -> bool:
    """Say whether `choice` ("a", "b", ...) answers question `question` of `lesson`'s quiz, and why each choice is
    right or wrong. Returns whether it was right; anything it cannot read gets ✗ and how to call it, no traceback."""
    how = 'call it as answer("20", 1, "a"): the lesson, the question\'s number, the choice\'s letter'
    try:
        qs = questions(lesson) if isinstance(lesson, str) else questions(str(lesson))
    except KeyError as e:
        print(f"✗ {e.args[0]}; {how}")
        return False
    if isinstance(question, bool) or not isinstance(question, int) or not 1 <= question <= len(qs):
        print(f"✗ the {lesson} quiz has questions 1..{len(qs)}, not {short(question)}; {how}")
        return False
    q = qs[question - 1]
    letters = LETTERS[: len(q.choices)]
    pick = choice.strip().lower() if isinstance(choice, str) else None
    if pick is None or len(pick) != 1 or pick not in letters:
        print(f"✗ question {question} has choices {', '.join(letters)}, not {short(choice)}; {how}")
        return False
    right = q.choices[letters.index(pick)].right
    print(("✓ right" if right else "✗ not this one") + f": {q.text}")
    for i, c in enumerate(q.choices):
        print(f"  {LETTERS[i]}{' ✓' if c.right else '  '} {c.text}\n      {c.why}")
    return right


def quiz_markdown(path: Path = BANK) -> str:
    """Every lesson's quiz as one markdown page (the instructor's), each answer and explanation beneath."""
    out = []
    for lesson, qs in load(path).items():
        out.append(f"## {lesson}\n")
        for n, q in enumerate(qs, 1):
            out.append(f"**{n}. {q.text}**\n")
            out += [
                f"- {LETTERS[i]}. {c.text} {'(right)' if c.right else ''}\n  *{c.why}*" for i, c in enumerate(q.choices)
            ]
            out.append("")
    return "\n".join(out)
