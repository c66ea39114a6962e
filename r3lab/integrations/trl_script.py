"""Scripted turns for `model.generate`: the same forced text r3lab's engine takes as `scripts`, for TRL's loop.

Benchmarks, tests and lessons need a tiny untrained model to call the zoom tool; a logits processor
forces each assistant turn's tokens (after the last `<|im_start|>assistant\\n` of a row), and at a
`Choice` lets the model sample among a few alternatives (so a GRPO group differs and its advantages
are not all zero). The model still runs every forward pass; only the choice of token is taken from it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch

from ..core.settings import short


@dataclass(frozen=True)
class Choice:
    """Alternatives the model samples among at this point of a turn (none may be a token prefix of another);
    where options share leading tokens, the model chooses at the first token that differs."""

    options: tuple[str, ...]


Turn = Sequence["str | Choice"]


class ScriptedTurns:
    """A `LogitsProcessor`: turn k of every row (k = assistant turns already in the row) follows `turns[k]`;
    after its script a turn ends with `<|im_end|>`; rows past the last turn only end theirs."""

    def __init__(self, tokenizer, turns: Sequence[Turn], eos: str = "<|im_end|>"):
        enc = lambda t: list(tokenizer.encode(t, add_special_tokens=False))  # noqa: E731
        self.start = enc("<|im_start|>assistant\n")
        self.eos = tokenizer.convert_tokens_to_ids(eos)
        self.turns = []
        for turn in turns:
            parts = []
            for part in turn:
                if isinstance(part, Choice):
                    opts = [enc(o) for o in part.options]
                    if any(a != b and a == b[: len(a)] for a in opts for b in opts):
                        raise ValueError(
                            f"Choice{short(part.options)}: an option is a token prefix of another, so where "
                            "it ends is ambiguous; make the options end differently"
                        )
                    parts.append(opts)
                else:
                    parts.append([enc(part)])
            self.turns.append(parts)

    def _turns(self, input_ids: torch.Tensor) -> list[tuple[int, list[int]]]:
        """Per row: (assistant turns before the current one, the ids of the current turn so far)."""
        s, L = self.start, input_ids.size(1)
        if L < len(s):
            return [(-1, [])] * input_ids.size(0)
        hit = torch.ones(input_ids.size(0), L - len(s) + 1, dtype=torch.bool, device=input_ids.device)
        for j, t in enumerate(s):  # vectorised: this runs once per generated token, over whole contexts
            hit &= input_ids[:, j : L - len(s) + 1 + j] == t
        out = []
        for b in range(input_ids.size(0)):
            where = hit[b].nonzero()
            if not len(where):
                out.append((-1, []))
            else:
                out.append((len(where) - 1, input_ids[b, int(where[-1]) + len(s) :].tolist()))
        return out

    def allowed(self, row: list[int]) -> list[int]:
        """The token ids the row may take next."""
        return self._allowed(*self._turns(torch.tensor([row]))[0])

    def _allowed(self, k: int, done: list[int]) -> list[int]:
        if not 0 <= k < len(self.turns):
            return [self.eos]
        pos = 0
        for opts in self.turns[k]:
            left = done[pos:]
            ended = [o for o in opts if left[: len(o)] == o]
            if ended:  # this part is written: on to the next
                pos += len(ended[0])
                continue
            nxt = sorted({o[len(left)] for o in opts if o[: len(left)] == left})
            return nxt or [self.eos]  # empty only if the row left the script (cannot happen while forcing)
        return [self.eos]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for b, (k, done) in enumerate(self._turns(input_ids)):
            mask[b, self._allowed(k, done)] = 0.0
        return scores + mask


@contextlib.contextmanager
def scripted(model, processor: ScriptedTurns):
    """Within the block, `model.generate` follows `processor` (TRL calls `generate` on the unwrapped model)."""
    from transformers import LogitsProcessorList

    original = model.generate

    def generate(*args, **kwargs):
        extra = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
        extra.append(processor)
        return original(*args, logits_processor=extra, **kwargs)

    model.generate = generate
    try:
        yield processor
    finally:
        del model.generate  # the instance attribute goes; the class's method shows again
