"""One answer extractor for every reader: the last <answer>, an unclosed one too, never the end-of-turn token."""

import doctest

import pytest

import r3lab.core.answer as A
from r3lab.core.answer import answer_span, extract_answer
from r3lab.core.regions import ViewConfig
from r3lab.core.trajectory import MODEL, Piece, Trajectory
from r3lab.testing import toy_image

CASES = [
    ("<answer>red</answer><|im_end|>", "red"),
    ("<answer>red<|im_end|>", "red"),  # unclosed: the turn's end is not part of the answer
    ("<answer> blue </answer>", "blue"),
    ("<answer>red</answer> then <answer>blue", "blue"),  # the last one counts
    ("<think>no answer</think><|im_end|>", None),
    ("<answer></answer>", ""),
    ("<answer>two\nlines</answer><|endoftext|>\n", "two\nlines"),
]


@pytest.mark.parametrize("text,want", CASES)
def test_extract_answer(text, want):
    assert extract_answer(text) == want
    span = answer_span(text)
    assert (span is None) == (want is None)
    if span is not None:
        assert text[span[0] : span[1]] == want and span[0] <= span[1]


@pytest.mark.parametrize("text,want", CASES)
def test_the_trajectory_reads_its_answer_the_same_way(text, want):
    t = Trajectory.start(toy_image((56, 56)), "q?", ViewConfig())
    t.pieces.append(Piece(MODEL, text))
    assert t.final_answer() == want


def test_doctests():
    res = doctest.testmod(A)
    assert res.attempted >= 4 and res.failed == 0
