"""The tokenizer corpus: the world's text, shipped as r3lab/model/corpus.txt, and what training on it gives."""

from r3lab.data.vlir import build_samples
from r3lab.data.vocab import COLOURS, SHAPES, WORDS, corpus, world_corpus, write_corpus
from r3lab.model.tokenizer import CORPUS, build_tokenizer, corpus_lines


def test_the_shipped_corpus_is_todays_world():
    assert corpus_lines() == corpus(), (
        f"{CORPUS} is not the text of today's world (its words or templates changed): write it anew with "
        f"`python -m r3lab.data.vocab {CORPUS.relative_to(CORPUS.parents[2])}`"
    )


def test_the_corpus_holds_every_word_three_ways_and_the_worlds_questions():
    lines = set(corpus())
    for w in WORDS + COLOURS + SHAPES:
        assert {w, f" {w}", w.capitalize(), f" {w.capitalize()}"} <= lines
    s = build_samples(1, seed=0, families=["read_one"], progress=False)[0]
    assert s.question in world_corpus()
    assert not any(tag in line for line in world_corpus() for tag in ("<think>", "</answer>", "<|im_end|>"))


def test_write_corpus_round_trips(tmp_path):
    path = write_corpus(tmp_path / "c.txt")
    assert path.read_bytes().decode("utf-8").split("\n")[:-1] == corpus()


def test_the_worlds_words_are_single_tokens():
    tok = build_tokenizer()
    for w in COLOURS + ["circle", "square", "triangle", "diamond", "mark", "zoom"]:
        assert len(tok.encode(f" {w}", add_special_tokens=False)) == 1, w
