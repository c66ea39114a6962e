"""Choosing the next token: temperature, top-p, forced script tokens, and the ids never to sample.

The recorded log-prob is `log_softmax(logits / T)` at the chosen id over the whole vocabulary,
taken before the ban and top-p: what a teacher-forced forward at the same temperature recomputes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:
    from ..model.policy import Policy

_VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
_NEVER_SAMPLED = _VISION_TOKENS + ("<|im_start|>", "<|endoftext|>")


def banned_ids(policy: "Policy") -> list[int]:
    """Ids sampling must never produce: vision specials, `<|im_start|>`, `<|endoftext|>`, pad and
    the model's padded vocabulary rows the tokenizer does not know."""
    tok = policy.tokenizer
    ids = set(policy.vision_token_ids) | {policy.pad_id}
    unk = getattr(tok, "unk_token_id", None)
    for t in _NEVER_SAMPLED + ("<|im_end|>",):  # <|im_end|>: unless it is the eos (SmolVLM ends with another)
        i = tok.convert_tokens_to_ids(t)
        if i is not None and i != unk:
            ids.add(int(i))
    ids.discard(policy.eos_id)
    vocab = int(policy.model.get_output_embeddings().weight.shape[0])
    return sorted(ids | set(range(len(tok), vocab)))


def brace_table(policy: "Policy", grammar: str = "json") -> list[bool]:
    """For each id: can it end a crop call? json grammar: its text holds `}` or a newline (a newline
    ends a call whose JSON string was never closed, `r3lab.core.crop_calls`); tool grammar: `>`
    (the end of `</tool_call>`, one added token in Qwen's tokenizers)."""
    vocab = int(policy.model.get_output_embeddings().weight.shape[0])
    table = [False] * vocab
    # byte-level BPE maps printable ASCII to itself and the newline byte to "\u010a" ("Ċ"), so the
    # token string shows `}` or a newline iff its bytes hold one
    ends = (">",) if grammar == "tool" else ("}", "\n", "\u010a")
    for s, i in policy.tokenizer.get_vocab().items():
        if i < vocab and any(e in s for e in ends):
            table[i] = True
    for i in [i for e in ends[:2] for i in policy.encode(e)]:
        table[i] = True
    return table


def choose(
    logits: torch.Tensor,
    forced: torch.Tensor | None,
    temperature: float,
    top_p: float,
    ban: torch.Tensor,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token per row (`forced` where it is >= 0: a script's token, on the device) and its log-prob, both left on
    the device (the engine fetches them in one copy).

    The log-prob is `log_softmax(logits / T)` over the whole vocabulary (T = 1 when greedy),
    before masking and top-p: what a teacher-forced forward at the same temperature recomputes.
    """
    greedy = temperature <= 0
    scaled = logits if greedy else logits / temperature
    logp = torch.log_softmax(scaled, dim=-1)
    allowed = scaled + ban
    if greedy:
        pick = allowed.argmax(-1)
    else:
        probs = torch.softmax(allowed, dim=-1)
        if top_p < 1.0:
            sp, si = probs.sort(dim=-1, descending=True)
            drop = (sp.cumsum(-1) - sp) > top_p  # keeps the smallest prefix whose mass reaches top_p
            probs = probs.scatter(-1, si, sp.masked_fill(drop, 0.0))
        pick = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    if forced is not None:
        pick = torch.where(forced >= 0, forced, pick)
    lp = logp.gather(-1, pick[:, None]).squeeze(-1)
    return pick, lp


class Forced:
    """The scripts' tokens on the device: the k-th token of row r is `table[r, k]` (-1: sampled). Copied there once
    per rollout; each step reads every row's next one without the host (`next`), all rows advance together (`step`),
    and rows leaving the batch take theirs along (`keep`)."""

    def __init__(self, scripts: Sequence[Sequence[int]], link):
        width = max(len(s) for s in scripts)
        table = torch.full((len(scripts), width + 1), -1, dtype=torch.long)
        for r, s in enumerate(scripts):
            table[r, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        self.table, self.width = link.send(table)[0], width
        self.row = torch.arange(len(scripts), device=self.table.device)
        self.k = torch.zeros(len(scripts), dtype=torch.long, device=self.table.device)

    @classmethod
    def of(cls, scripts: Sequence[Sequence[int]], link) -> "Forced | None":
        return cls(scripts, link) if any(scripts) else None

    def next(self) -> torch.Tensor:
        return self.table[self.row, self.k.clamp(max=self.width)]

    def step(self) -> None:
        self.k += 1

    def keep(self, idx: torch.Tensor) -> None:
        self.row, self.k = self.row[idx], self.k[idx]
