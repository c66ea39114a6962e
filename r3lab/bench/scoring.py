"""Scoring real benchmarks the way lmms-eval and VLMEvalKit do: answer text, option letter, hit, box mIoU.

Every rule below re-implements a public one; the docstring of each names the file it follows
(repository, path, function). The order is always the same:

1. **The answer text**: the content of the first complete `<answer>...</answer>` if the response has
   one, else the whole response, stripped (VLMEvalKit `vlmeval/dataset/image_mcq.py`, `TreeBench.evaluate`
   and `MMERealWorld.evaluate`: `re.search(r"<answer>(.*?)</answer>")`). This differs from r3lab's own
   rule (the *last* answer, `r3lab.core.answer`) only for responses holding several complete answers.
2. **The option letter**, by the benchmark's own extractor:
   V* -> `letter_vstar` (lmms-eval), HR-Bench -> `letter_can_infer` (VLMEvalKit exact matching),
   MME-RealWorld and TreeBench -> `letter_regex` (VLMEvalKit / lmms-eval `extract_characters_regex`).
3. **Aggregation**: accuracy per item; HR-Bench averages accuracy over `cycle_category` groups
   (`cycle_accuracy`); TreeBench adds the mIoU of the boxes written in the reasoning (`treebench_iou`).
"""

from __future__ import annotations

import math
import re
import string
from collections import defaultdict
from typing import Iterable, Sequence

from ..core.regions import box_iou

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_END = re.compile(r"(<\|im_end\|>|<\|endoftext\|>)\s*$")


def answer_text(response: str) -> str:
    """The first complete `<answer>` content, else the whole response (end-of-turn token removed), stripped.

    >>> answer_text("<think>(A) or (B)?</think><answer> B </answer><|im_end|>")
    'B'
    >>> answer_text("B. the red one")
    'B. the red one'
    """
    response = _END.sub("", response or "")
    m = _ANSWER.search(response)
    return (m.group(1) if m else response).strip()


# -- option letters --------------------------------------------------------------------------------
_VSTAR_PATTERNS = [
    re.compile(r"^([A-D])\s*[\.)\]]*", re.I),  # starts with the letter
    re.compile(r"(?:THE\s+)?(?:ANSWER|CHOICE|OPTION)(?:\s+IS)?[\s:]+([A-D])", re.I),
    re.compile(r"\(([A-D])\)", re.I),
    re.compile(r"([A-D])\s*(?:\.|\)|])", re.I),
    re.compile(r"(?:^|\s)([A-D])(?:\s|$)", re.I),
]


def letter_vstar(text: str) -> str | None:
    """V*'s letter: lmms-eval `lmms_eval/tasks/vstar_bench/utils.py`, `extract_answer_letter`.

    The upper-cased text is tried against five patterns in order (leading letter; "answer/choice/option
    (is)": letter; "(X)"; "X." / "X)" / "X]"; a lone letter), then "exactly one of A-D in the text",
    then "the first character"; None if nothing matches.

    >>> letter_vstar("B. white"), letter_vstar("The answer is c"), letter_vstar("white")
    ('B', 'C', None)
    """
    s = (text or "").strip().upper()
    for pat in _VSTAR_PATTERNS:
        m = pat.search(s)
        if m:
            return m.group(1).upper()
    found = re.findall(r"[A-D]", s)
    if len(found) == 1:
        return found[0]
    return s[0] if s and s[0] in "ABCD" else None


_REGEX_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)


def letter_regex(text: str, choices: Sequence[str] = ("(A)", "(B)", "(C)", "(D)", "(E)")) -> str:
    """MME-RealWorld's and TreeBench's letter: VLMEvalKit `vlmeval/dataset/utils/multiple_choice.py`
    (and lmms-eval `lmms_eval/tasks/mme_realworld/utils.py`), `extract_characters_regex`.

    Answer prefixes ("The best answer is", ...) are removed; a text of more than 10 words without a
    letter A-E gives ""; else the first capital A-E anywhere; with none, the first choice "(X)" that
    contains the lower-cased text. Faithful to the original, so an empty answer gives "A" (the empty
    string is contained in "(a)"); `score_item` records such responses as `answered=False`.

    >>> (letter_regex("The best answer is (C)"), letter_regex("b"),
    ...  letter_regex("I cannot tell what this shows at all here"))
    ('C', 'B', '')
    """
    s = (text or "").strip()
    for p in _REGEX_PREFIXES:
        s = s.replace(p, "")
    if len(s.split()) > 10 and not re.search("[ABCDE]", s):
        return ""
    m = re.search(r"[ABCDE]", s)
    if m is None:
        for c in choices:
            if s.lower() in c.lower():
                return c[1]
        return ""
    return m.group(0)


_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_VERBOSE = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def letter_can_infer(text: str, options: dict[str, str]) -> str | None:
    """HR-Bench's letter (and VLMEvalKit's default for multiple choice without a judge model):
    VLMEvalKit `vlmeval/utils/matching_util.py`, `can_infer` = `can_infer_option` then `can_infer_text`.

    Option: punctuation `.()[],:;!*#{}` becomes spaces; if exactly one option letter is a word and it
    is among the last five words, that letter; known refusals give "Z"; "answer is X" as a fallback.
    Text: if exactly one option's text (lower-cased) occurs in the answer (not longer than twice the
    options' total length), that option. None when neither infers a letter ("Z" counts as wrong).

    >>> opts = {"A": "red", "B": "blue"}
    >>> letter_can_infer("B", opts), letter_can_infer("It is blue.", opts), letter_can_infer("red or blue", opts)
    ('B', 'B', None)
    """
    text = str(text)
    letters = set(options)
    if any(r in text for r in _REFUSALS):
        return "Z"
    mod = text
    for c in ".()[],:;!*#{}":
        mod = mod.replace(c, " ")
    words = [w.strip() for w in mod.split()]
    hits = [c for c in letters if c in words]
    if len(hits) == 1 and words.index(hits[0]) > len(words) - 5:
        return hits[0]
    if not hits and "Z" in words:
        return "Z"
    m = _VERBOSE.search(text)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    low = text.lower()
    if len(low) > 2 * sum(len(str(v)) for v in options.values()):
        return None
    cands = [k for k, v in options.items() if str(v).lower() in low]
    return cands[0] if len(cands) == 1 else None


# -- boxes -----------------------------------------------------------------------------------------
_THINK = re.compile(r"<think>(.*?)</think>", re.S)
_BOX = re.compile(r"<box>(.*?)</box>", re.S)
_COORDS = re.compile(r"\[(\d+),(\d+),(\d+),(\d+)\]")


def treebench_boxes(response: str) -> list[tuple[int, int, int, int]]:
    """The boxes TreeBench scores: `<box>[x1,y1,x2,y2]</box>` (integers, no spaces, x1 < x2 and y1 < y2)
    in the first `<think>...</think>` (else the whole response), original pixels. VLMEvalKit
    `vlmeval/dataset/image_mcq.py`, `TreeBench.evaluate` and `TreeBench.evaluate_box_iou`.

    >>> treebench_boxes("<think>the cup <box>[10,20,50,60]</box> <box>[1, 2, 3, 4]</box></think>")
    [(10, 20, 50, 60)]
    """
    m = _THINK.search(response or "")
    cot = m.group(1).strip() if m else (response or "")
    out = []
    for raw in _BOX.findall(cot):
        c = _COORDS.match(raw.strip())
        if c:
            x1, y1, x2, y2 = map(int, c.groups())
            if x1 < x2 and y1 < y2:
                out.append((x1, y1, x2, y2))
    return out


def best_overlap_iou(predicted: Sequence, targets: Sequence) -> float:
    """For each target box the best IoU among the predicted boxes, averaged over targets (0 without targets
    or predictions): TreeBench's matching (VLMEvalKit `TreeBench.evaluate_box_iou`, `calculate_average_iou`),
    the same as r3lab's region IoU reward (`r3lab.train.rewards.region_iou`).

    >>> best_overlap_iou([(0, 0, 10, 10), (20, 0, 30, 10)], [(0, 0, 10, 20), (20, 0, 30, 10)])
    0.75
    """
    if not targets or not predicted:
        return 0.0
    return sum(max(box_iou(t, p) for p in predicted) for t in targets) / len(targets)


def treebench_iou(response: str, targets: Sequence) -> float:
    """One TreeBench item's box score, exactly as VLMEvalKit computes it: 0 without a written box,
    1 when boxes are written but the item has no target, else `best_overlap_iou`."""
    boxes = treebench_boxes(response)
    if not boxes:
        return 0.0
    if not targets:
        return 1.0
    return best_overlap_iou(boxes, targets)


# -- items and aggregation -------------------------------------------------------------------------
def score_item(benchmark: str, response: str, provenance: dict, targets: Sequence = ()) -> dict:
    """Answer text, extracted letter and hit of one response to one benchmark item; TreeBench adds its box
    IoU against `targets` (original pixels)."""
    ans = answer_text(response)
    opts = provenance["options"]
    if benchmark == "vstar":
        pred = letter_vstar(ans)
    elif benchmark.startswith("hrbench"):
        pred = letter_can_infer(ans, dict(opts))
    else:
        pred = letter_regex(ans) or None
    out = {"answer_text": ans, "pred": pred, "hit": int(pred == provenance["answer"]), "answered": bool(ans)}
    if benchmark == "treebench":
        out["box_iou"] = treebench_iou(response, targets)
    return out


def cycle_accuracy(items: Iterable[dict], key: str = "cycle_category", by: str = "category") -> dict[str, float]:
    """HR-Bench's accuracy: the mean hit within each `cycle_category`, then the mean over cycles; per
    `category` (single, cross) and "all". lmms-eval `lmms_eval/tasks/hrbench/utils.py`
    (`hrbench_aggregate_results`) and VLMEvalKit `vlmeval/dataset/utils/hrbench.py` (`report_acc_hrbench`,
    its "Average" rows).

    >>> items = [{"cycle_category": 0, "category": "single", "hit": 1},
    ...          {"cycle_category": 0, "category": "single", "hit": 0},
    ...          {"cycle_category": 1, "category": "single", "hit": 1}]
    >>> cycle_accuracy(items)
    {'all': 0.75, 'single': 0.75}
    """
    cycles: dict = defaultdict(lambda: defaultdict(list))
    for it in items:
        cycles[it[key]]["all"].append(it["hit"])
        cycles[it[key]][it[by]].append(it["hit"])
    sums: dict = defaultdict(float)
    for per in cycles.values():
        for typ, hits in per.items():
            sums[typ] += sum(hits) / len(hits)
    return {typ: sums[typ] / len(cycles) for typ in sorted(sums, key=lambda t: (t != "all", t))}


def mean(values: Iterable) -> float:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else math.nan


LETTERS = string.ascii_uppercase
