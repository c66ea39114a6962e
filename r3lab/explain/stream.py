"""The residual stream of one trajectory, run again and again with edits: what gradients, patching, faithfulness
curves and the logit lens share.

`Stream.of(policy, traj)` runs the vision tower once and keeps what the text decoder receives (its
`inputs_embeds`, positions, mask and, for Qwen3-VL, the DeepStack features): every later run calls the text
decoder alone, `k` rows at a time, with the image-token embeddings swapped, scaled (integrated gradients) or a
layer's output patched, under the model's own attention implementation (SDPA: no eager attention is needed
for gradients or patching). `target_positions` names the tokens an explanation scores: the box's digits of a
crop call, the model's read right after the crop, or its final answer.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from ..core.batch import collate, model_inputs
from ..core.settings import short
from ..core.trajectory import Trajectory
from .contract import TARGETS
from .hooks import TextParts, hooks, text_parts
from .swaps import _answer_positions, _read_positions, _tokens_in, piece_starts

if TYPE_CHECKING:
    from ..model.policy import Policy

_NUMBER = re.compile(r"(?<![A-Za-z_\d.])-?\d+(?:\.\d+)?")


class _Stop(Exception):
    """Raised by the capture pre-hook: the decoder's inputs are known, its own run is not needed."""


@dataclass
class Stream:
    """What the text decoder receives for one trajectory (batch of one), ready to be run with edits."""

    policy: "Policy"
    traj: Trajectory
    parts: TextParts
    kwargs: dict  # the decoder's keyword arguments (batch 1), detached
    ids: torch.Tensor  # (L,) token ids
    main_pos: torch.Tensor  # (n,) positions of the main image's tokens, row-major over its merged grid
    grid: tuple[int, int]  # (rows, cols) of the main image's merged grid
    cell: int  # side of one merged cell in the main image's model-input pixels

    @classmethod
    def of(cls, policy: "Policy", traj: Trajectory) -> "Stream":
        if policy.position_dims != 3:
            raise NotImplementedError(
                f"{type(policy.model).__name__}: the residual-stream methods need one token per "
                "merged cell of the main image (Qwen families); SmolVLM tiles its images"
            )
        parts = text_parts(policy.model)
        traj = traj.tokenize(policy)
        batch = collate([traj], policy)
        got: dict = {}

        def grab(module, args, kwargs):
            got.update(kwargs)
            raise _Stop

        with hooks(pre=[(parts.language_model, grab)], with_kwargs=True), torch.no_grad():
            try:
                parts.inner(**model_inputs(batch), use_cache=False)
            except _Stop:
                pass
        if "inputs_embeds" not in got:
            raise RuntimeError(f"{type(parts.inner).__name__} did not call its language model with inputs_embeds")
        kw = {
            k: (v.detach() if torch.is_tensor(v) else [d.detach() for d in v] if isinstance(v, list) else v)
            for k, v in got.items()
        }
        kw["input_ids"] = None
        idx = next(i for i, p in enumerate(traj.pieces) if p.kind == "image" and p.info.role == "main")
        start = piece_starts(traj)[idx]
        piece = traj.pieces[idx]
        main = [start + k for k, t in enumerate(piece.ids) if t == policy.image_token_id]
        t, h, w = piece.info.grid_thw
        m = policy.merge_size
        if len(main) != t * h * w // (m * m):
            raise RuntimeError(
                f"main image has {len(main)} tokens, its grid {piece.info.grid_thw} / merge {m} says otherwise"
            )
        return cls(
            policy, traj, parts, kw, batch["input_ids"][0], torch.tensor(main), (h // m, w // m), policy.patch_size * m
        )

    # -- inputs ---------------------------------------------------------------------------------
    @property
    def embeds(self) -> torch.Tensor:
        return self.kwargs["inputs_embeds"]  # (1, L, d)

    @property
    def length(self) -> int:
        return self.embeds.shape[1]

    def main_embeds(self) -> torch.Tensor:
        """(n, d) the main image's token embeddings as the decoder receives them."""
        return self.embeds[0, self.main_pos]

    def with_main(self, x: torch.Tensor) -> torch.Tensor:
        """(k, L, d) inputs whose main-image tokens are `x` (k, n, d); differentiable in `x`."""
        e = self.embeds.expand(x.shape[0], -1, -1).clone()
        e[:, self.main_pos.to(e.device)] = x.to(e.dtype)
        return e

    def swapped(self, other: "Stream", mask: torch.Tensor) -> tuple[torch.Tensor, list | None]:
        """(k, L, d) inputs (and DeepStack features) with the tokens where `mask` (k, L) is set taken from `other`,
        a stream of the same token layout (a counterfactual trajectory)."""
        if other.length != self.length:
            raise ValueError(
                f"the counterfactual has {other.length} tokens, the trajectory {self.length}: "
                "a swap needs the same token layout"
            )
        m = mask.to(self.embeds.device)
        e = torch.where(m[..., None], other.embeds, self.embeds)
        ds = self.kwargs.get("deepstack_visual_embeds")
        if ds is None:
            return e, None
        vis = torch.nonzero(self.kwargs["visual_pos_masks"][0], as_tuple=True)[0]
        sel = m[:, vis].reshape(-1)[:, None]  # rows of the features, batch-major like masked_scatter
        ods = other.kwargs["deepstack_visual_embeds"]
        return e, [torch.where(sel, o.repeat(len(m), 1), d.repeat(len(m), 1)) for d, o in zip(ds, ods)]

    def main_mask(self, cells: torch.Tensor) -> torch.Tensor:
        """(k, L) token mask of the main-image cells set in `cells` (k, n)."""
        out = torch.zeros(cells.shape[0], self.length, dtype=torch.bool)
        out[:, self.main_pos] = cells.bool().cpu()
        return out

    # -- runs -----------------------------------------------------------------------------------
    def _kwargs(self, embeds: torch.Tensor, start: int, deepstack: list | None) -> dict:
        """The decoder's arguments for `embeds` (k, L - start, d): the tokens from `start` on."""
        k, L = embeds.shape[0], self.length
        sl = slice(start, L)
        kw = dict(self.kwargs)
        kw["inputs_embeds"] = embeds
        kw["attention_mask"] = self.kwargs["attention_mask"].repeat(k, 1)  # with a cache: prefix + these tokens
        pos = self.kwargs["position_ids"]
        kw["position_ids"] = pos[..., sl].repeat(1, k, 1) if pos.ndim == 3 else pos[:, sl].repeat(k, 1)
        vm = kw.get("visual_pos_masks")
        if vm is not None:
            kw["visual_pos_masks"] = vm[:, sl].repeat(k, 1)
            ds = kw.get("deepstack_visual_embeds")
            if ds is not None:
                a, n = int(vm[0, :start].sum()), int(vm[0, sl].sum())
                feats = deepstack or [d.repeat(k, 1) for d in ds]
                kw["deepstack_visual_embeds"] = [
                    f.reshape(k, -1, f.shape[-1])[:, a : a + n].reshape(-1, f.shape[-1]) for f in feats
                ]
        kw["use_cache"] = False
        return kw

    def prefix(self, p: int):
        """The decoder's cache after the first `p` clean tokens: every edited run that changes nothing before
        position `p` starts from it (`hidden(..., start=p, cache=...)`) instead of computing them again."""
        if not 0 < p < self.length:
            raise ValueError(f"a prefix of {short(p)} tokens: use 1..{self.length - 1}")
        kw = self._kwargs(self.embeds[:, :p], 0, None)
        kw["attention_mask"] = kw["attention_mask"][:, :p]
        kw["position_ids"] = kw["position_ids"][..., :p]
        if kw.get("visual_pos_masks") is not None:
            vm = self.kwargs["visual_pos_masks"][:, :p]
            kw["visual_pos_masks"] = vm
            kw["deepstack_visual_embeds"] = [d[: int(vm.sum())] for d in self.kwargs["deepstack_visual_embeds"]]
        kw["use_cache"] = True
        with torch.no_grad():
            out = self.parts.language_model(**kw)
        cache = out.get("cache") or out.get("past_key_values")  # the field's name moved within transformers 5
        if cache is None:
            raise RuntimeError(f"{type(self.parts.language_model).__name__} returned no cache for use_cache=True")
        return cache

    def hidden(
        self, embeds: torch.Tensor, deepstack: list | None = None, fwd: Sequence = (), start: int = 0, cache=None
    ) -> torch.Tensor:
        """The decoder's final (normed) hidden states (k, L - start, d) for `embeds` (k, L - start, d), the tokens
        from `start` on (after `cache`, a `prefix(start)`); `fwd`: extra forward hooks (positions in the rows
        they see are shifted by `start`)."""
        kw = self._kwargs(embeds, start, deepstack)
        if start:
            if cache is None:
                raise ValueError("a run from start > 0 needs the cache of its prefix (Stream.prefix(start))")
            cache = copy.deepcopy(cache)
            if embeds.shape[0] > 1:
                cache.batch_repeat_interleave(embeds.shape[0])
            kw["cache"], kw["use_cache"] = cache, True
        with hooks(fwd=fwd):
            out = self.parts.language_model(**kw)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state

    def logprobs(self, hidden: torch.Tensor, positions: Sequence[int], start: int = 0) -> torch.Tensor:
        """(k, n) log-probs of the tokens at `positions` (each predicted by the hidden state before it; `hidden`
        holds the tokens from `start` on)."""
        pos = torch.as_tensor(list(positions), dtype=torch.long, device=hidden.device)
        if len(pos) and int(pos.min()) - 1 < start:
            raise ValueError(f"target position {int(pos.min())} is predicted inside the reused prefix (< {start})")
        logits = self.parts.lm_head(hidden[:, pos - 1 - start]).float()
        tok = self.ids.to(hidden.device)[pos]
        return torch.log_softmax(logits, -1).gather(-1, tok[None, :, None].expand(hidden.shape[0], -1, 1))[..., 0]

    def score(
        self, embeds: torch.Tensor, positions: Sequence[int], deepstack: list | None = None, fwd: Sequence = ()
    ) -> torch.Tensor:
        """(k,) summed log-prob of the tokens at `positions`."""
        return self.logprobs(self.hidden(embeds, deepstack, fwd), positions).sum(-1)

    def rows(
        self, n: int, make: Callable[[slice], tuple], positions: Sequence[int], chunk: int, start: int = 0, cache=None
    ) -> torch.Tensor:
        """(n, len(positions)) log-probs of `n` edited rows, `chunk` at a time: `make(rows)` returns
        (embeds, deepstack, fwd hooks) for those rows (from `start` on, after `cache`)."""
        out = []
        with torch.no_grad():
            for a in range(0, n, chunk):
                e, ds, fwd = make(slice(a, min(n, a + chunk)))
                out.append(self.logprobs(self.hidden(e, ds, fwd, start, cache), positions, start).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(positions))


def target_positions(policy: "Policy", traj: Trajectory, event, target: str) -> list[int]:
    """Token positions an explanation of crop event `event` scores: "box" (the digit tokens of its crop call:
    the coordinates the model wrote), "read" (its text right after the crop, up to its next call) or "answer"
    (the final answer's content). Empty when the trajectory has no such tokens."""
    if target not in TARGETS:
        raise ValueError(f"target={short(target)}: choose from {TARGETS}")
    if target == "answer":
        return _answer_positions(policy, traj)
    if target == "read":
        return _read_positions(policy, traj, event) if event.ok else []
    piece = traj.pieces[event.piece]
    start = piece_starts(traj)[event.piece]
    a, b = event.call.start, event.call.end
    toks = set()
    for m in _NUMBER.finditer(piece.text, a, b):  # the coordinates, not a digit of a key such as "bbox_2d"
        toks.update(_tokens_in(policy, piece.ids, m.start(), m.end()))
    return [start + k for k in sorted(toks)]
