"""The text r3-tiny's tokenizer is trained on: the synthetic world's words, templates and the prompt.

Training the tokenizer on this text makes the world's words single tokens. The model layer reads it
from `r3lab/model/corpus.txt` (it does not run the data generator); after a change to the world's
words or templates, write that file anew: `python -m r3lab.data.vocab r3lab/model/corpus.txt`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.prompt import INSTRUCTION, SYSTEM_PROMPT
from .tasks import ALL_FAMILIES
from .vlir import build_samples

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown", "grey", "cyan"]
SHAPES = ["circle", "square", "triangle", "cross", "ring", "diamond", "star", "bar", "dot", "mark", "shape"]
WORDS = """
a an the is are was it its this that these those of on in at to from with and or not no yes
what which where how many much does do did same different colour color shape size small large big tiny
left right top bottom middle centre center upper lower corner side object objects image picture view
look looking closer zoom zoomed crop cropped region box area detail details inside near next
there here one two three four five six seven eight nine ten zero number count dots dot marks
i see can cannot need needs must should will first then now so because both each other than
letter letters digit glyph text read reading answer think reasoning question final check
you helpful assistant user system call tool focus key areas put your format json
coarse fine clear clearly visible invisible too hard tell find found let me compare compared
equal match matches has have carries carrying sits placed shown show shows
enough without zooming done drawn counted colours plus rhombus brown grey gray
pattern patterns horizontal vertical rising falling checked checkered checks stripes half place near
""".split()


def corpus() -> list[str]:
    """Lines the tiny tokenizer is trained on: the prompt, every word in three spellings, the world's text."""
    words = WORDS + COLOURS + SHAPES
    lines = [SYSTEM_PROMPT, INSTRUCTION, '{"bbox_2d": [10, 20, 30, 40]}']
    for w in words:
        # each word alone, after a space and capitalised, so all three forms become tokens
        lines += [w, f" {w}", w.capitalize(), f" {w.capitalize()}"]
    lines += [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
    return lines + world_corpus()


def world_corpus(per_family: int = 48) -> list[str]:
    """Questions and reference rationales of the synthetic world, so its templates become few tokens.

    Reasoning tags are learned as added tokens, so they are cut out here (as they are at encode time).
    """
    lines = []
    for s in build_samples(len(ALL_FAMILIES) * per_family, seed=0, families=ALL_FAMILIES, progress=False):
        lines.append(s.question)
        for p in s.rationale or []:
            lines += [t for t in re.split(r"</?think>|</?answer>|<\|im_end\|>", p.text) if t.strip()]
    return lines


def write_corpus(path: str | Path) -> Path:
    """`corpus()` as a text file, one line per line (no line holds a newline)."""
    lines = corpus()
    if any("\n" in line or "\r" in line for line in lines):
        raise ValueError("a corpus line holds a line break; the one-line-per-line file cannot store it")
    path = Path(path)
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


if __name__ == "__main__":  # python -m r3lab.data.vocab r3lab/model/corpus.txt
    import sys

    print(write_corpus(sys.argv[1]))
