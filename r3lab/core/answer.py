"""Where the final answer sits in model text: the content of the last `<answer>...</answer>`.

One rule for every reader (rewards, evaluation, explanations, filters, importers): the last answer
counts, an unclosed final one counts too, and an end-of-turn token after it is not part of it.
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)
_END = re.compile(r"(<\|im_end\|>|<\|endoftext\|>)\s*$")


def answer_span(text: str) -> tuple[int, int] | None:
    """Character span of the last answer's content in `text`, surrounding white space excluded; None if none.

    >>> text = "<answer> red <|im_end|>"
    >>> a, b = answer_span(text); text[a:b]
    'red'
    """
    body = _END.sub("", text)  # only a suffix goes, so offsets into `body` are offsets into `text`
    found = list(_ANSWER.finditer(body))
    if not found:
        return None
    a, b = found[-1].span(1)
    inner = body[a:b]
    start = a + len(inner) - len(inner.lstrip())
    return start, max(start, b - (len(inner) - len(inner.rstrip())))


def extract_answer(completion: str) -> str | None:
    """The content of the last `<answer>...</answer>` (an unclosed final one counts), else None.

    >>> extract_answer("<think>red?</think><answer> blue </answer><|im_end|>")
    'blue'
    >>> extract_answer("<answer>red<|im_end|>")
    'red'
    >>> extract_answer("no tags here") is None
    True
    """
    span = answer_span(completion)
    return None if span is None else completion[span[0] : span[1]]
