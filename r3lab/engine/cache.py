"""The KV cache that rows decoding in lock-step share: chunks with masked holes, explicit positions.

Every forward appends one left-padded chunk per row to the cache: usually the row's last sampled
token, sometimes that token followed by a zoomed crop (`<|vision_start|>`, image pads,
`<|vision_end|>`) or by an environment note. Shorter chunks are padded on the left so that the
last slot of every row is real (one `logits_to_keep=1` gives every row's next-token logits); the
pads stay in the cache as masked holes. Positions are explicit per row (`Policy.positions` from the row's
next free position: 3-D M-RoPE for Qwen, 1-D for SmolVLM), so holes never shift them and
`model.model.rope_deltas` is never consulted (a stale one shifts every position: DEVELOPERS.md, Contracts).

Keys in the cache already carry their rotary phase, so rows can be dropped and holes squeezed out
by plain gathers without changing any logit ("compaction").

`LockStep` is the host's side of that layout, which both caches share: each row's next position, real slots and
first used column, and the work counters; so nothing about the layout is ever read back from the device.
`SharedCache` keeps the keys in a growing `DynamicCache`; `r3lab.engine.static_cache` in buffers kept per model.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch
from transformers import DynamicCache

from ..core.rope import positions_for_model
from ..model.adapters import base_model
from .host import Link

if TYPE_CHECKING:
    from ..model.policy import Policy

SPLIT_BELOW = 0.5  # a step whose chunks fill less than this share of rows x width runs as two sub-batches


@dataclass
class Feed:
    """What a row appends to the cache next: its last token, maybe followed by a crop or a note."""

    ids: list[int]
    grids: list[tuple[int, int, int]] = field(default_factory=list)  # one per image run in ids
    pixel_values: torch.Tensor | None = None  # patches of those images (policy.encode_images)


def recurrent(policy: "Policy") -> bool:
    """Does the language model hold recurrent state (Qwen3.5's Gated-DeltaNet linear-attention layers)?"""
    text = policy.model.config.get_text_config()
    return "linear_attention" in (getattr(text, "layer_types", None) or [])


def check_attention(policy: "Policy", batch: int = 1) -> None:
    """Holes in the mask need an attention kernel that takes arbitrary 2-D masks, and layers that only attend.

    A recurrent layer folds every slot it is fed into its state, holes included (its gates decay it even on
    a zero input), so a hybrid model decodes one row at a time, without holes (`batch_rows=1`: a crop's chunk
    then continues its state exactly; or `mode="reference"`)."""
    impl = str(getattr(policy.model.config, "_attn_implementation", "sdpa") or "sdpa")
    if "flash" in impl:
        raise ValueError(
            f"the rollout engine keeps masked holes in its KV cache, which {impl!r} cannot express; "
            "load the policy with attn_implementation='sdpa' (or 'eager')"
        )
    text = policy.model.config.get_text_config()
    kinds = set(getattr(text, "layer_types", None) or [])
    if "linear_attention" in kinds:
        if batch > 1:
            raise ValueError(
                "this model's linear-attention layers hold recurrent state, which a lock-step cache with "
                "holes cannot hold; run it with RolloutConfig(batch_rows=1) (one row at a time, its state "
                "kept across crops) or mode='reference' (one row, re-prefilled)"
            )
        kinds -= {"linear_attention"}
    if any(t != "full_attention" for t in kinds):
        raise ValueError(
            "the rollout engine supports full-attention decoders only (sliding-window layers found); "
            "set use_sliding_window=False in the text config"
        )


class LockStep:
    """The host's bookkeeping of a lock-step cache of `batch` rows: positions, real slots, first used columns, the
    counters, and each step's layout."""

    def __init__(self, policy: "Policy", batch: int, link: Link | None = None):
        check_attention(policy, batch)
        self.policy, self.model = policy, policy.model
        self.device = policy.device
        self.link = link or Link(self.device)
        self.next_pos = [0] * batch
        self.real = [0] * batch  # real (non-hole) slots per row
        self.first = [0] * batch  # each row's first real column (the columns before it are holes)
        self.forwards = 0  # model calls made
        self.slots = 0  # cache slots computed (rows x chunk width), holes included
        self.kv_reads = 0  # cache slots attended over (rows x cache length), holes included
        self.compactions = 0
        # transformers renames the cache argument family by family (Idefics3: `cache`, Qwen: past_key_values)
        forward = inspect.signature(base_model(policy.model).forward).parameters  # under LoRA: the model's own
        self._cache_kw = "cache" if "cache" in forward else "past_key_values"

    batch: int
    length: int

    def holes(self) -> float:
        """Fraction of cache slots that are padding."""
        n = self.batch * self.length
        return 0.0 if n == 0 else 1.0 - sum(self.real) / n

    def maybe_compact(self, threshold: float) -> bool:
        if self.batch and threshold < 1.0 and self.holes() > threshold:
            self.compact()
            return True
        return False

    def compact(self) -> None:
        raise NotImplementedError

    def _layout(self, chunks, grids) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The step's host tensors: ids and step mask (B, width), positions (D, B, width), chunks left-padded;
        advances each row's next position, real slots and (a row's first chunk) first column."""
        B, L = self.batch, self.length
        if len(chunks) != B:
            raise ValueError(f"{len(chunks)} chunks for a cache of {B} rows")
        width = max(len(c) for c in chunks)
        if width == 0:
            raise ValueError("every chunk is empty")
        if width == 1 and all(len(c) == 1 for c in chunks):  # the common decoding step: no Python per token
            ids = torch.tensor([[c[0]] for c in chunks])
            pos = torch.tensor(self.next_pos).view(1, B, 1).expand(self.policy.position_dims, B, 1)
            step_mask = torch.ones(B, 1, dtype=torch.long)
            self.next_pos = [p + 1 for p in self.next_pos]
        else:
            p = self.policy
            ids = torch.full((B, width), p.pad_id, dtype=torch.long)
            pos = torch.zeros(p.position_dims, B, width, dtype=torch.long)
            step_mask = torch.zeros(B, width, dtype=torch.long)
            for b, c in enumerate(chunks):
                if not c:
                    continue
                n = len(c)
                ids[b, width - n :] = torch.as_tensor(list(c))
                pos[:, b, width - n :], self.next_pos[b] = p.positions(
                    c, grids[b] if grids else [], start=self.next_pos[b]
                )
                step_mask[b, width - n :] = 1
        self.first = [L + width - len(c) if not r else f for r, f, c in zip(self.real, self.first, chunks)]
        self.real = [r + len(c) for r, c in zip(self.real, chunks)]
        return ids, pos, step_mask

    def _keep_rows(self, rows: list[int]) -> None:
        self.next_pos = [self.next_pos[i] for i in rows]
        self.real = [self.real[i] for i in rows]
        self.first = [self.first[i] for i in rows]

    def _leading_holes(self) -> int:
        """Columns at the start that no row uses (left after the longest row left the batch)."""
        if not self.length or max(self.real) == self.length:
            return 0
        return min(self.first)

    def _compacted(self, keep: int) -> None:
        self.first = [keep - r for r in self.real]
        self.compactions += 1


class SharedCache(LockStep):
    """A `DynamicCache` for `batch` rows and its 2-D attention mask."""

    def __init__(self, policy: "Policy", batch: int, link: Link | None = None):
        super().__init__(policy, batch, link)
        # a hybrid model's cache holds conv and recurrent states for its linear-attention layers
        self.cache = DynamicCache(config=policy.model.config.get_text_config()) if recurrent(policy) else DynamicCache()
        self.mask = torch.zeros(batch, 0, dtype=torch.long, device=self.device)

    @property
    def batch(self) -> int:
        return self.mask.shape[0]

    @property
    def length(self) -> int:
        return self.mask.shape[1]

    def append(
        self,
        chunks: Sequence[Sequence[int]],
        grids: Sequence[Sequence] | None = None,
        pixel_values: torch.Tensor | None = None,
        ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Feed one chunk per row (an empty chunk = a row that only carries pads); returns the
        float32 next-token logits (batch, vocab) read at each row's last slot. (`ids`: the same one-token
        chunks already on the device; the static cache reads them from there.)"""
        B = self.batch
        host_ids, host_pos, host_mask = self._layout(chunks, grids)
        ids, pos, step_mask = self.link.send(host_ids, host_pos, host_mask)
        width = ids.shape[1]
        old_len = self.length
        self.mask = torch.cat([self.mask, step_mask], dim=1)
        kw = {}
        if pixel_values is not None:
            kw = self.policy.vision_inputs(pixel_values, [tuple(g) for gs in (grids or []) for g in gs])
        wide = [b for b, c in enumerate(chunks) if len(c) > 1]
        if old_len and width > 1 and len(wide) < B and sum(map(len, chunks)) < SPLIT_BELOW * B * width:
            return self._split(chunks, wide, ids, pos, old_len, kw)
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=positions_for_model(pos),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kw: self.cache},
            **kw,
        )
        self.forwards += 1
        self.slots += B * width
        self.kv_reads += B * width * self.length
        return out.logits[:, -1].float()

    def _split(self, chunks, wide, ids, pos, old_len, image_kw) -> torch.Tensor:
        """A wide step (some rows insert a crop or a note) computed without the other rows' pads.

        The wide rows and the one-token rows run as two sub-batches on copies of their cache rows;
        their new keys/values are written into the same slots a single padded forward would fill,
        and the pads of the one-token rows stay zero holes that no one attends to. Same layout,
        same logits; the compute of (rows x widest chunk) becomes (wide rows x widest) + narrow rows.
        """
        B, width = ids.shape
        narrow = [b for b, c in enumerate(chunks) if len(c) == 1]
        logits = None

        def widen(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t.new_zeros(B, t.shape[1], width, t.shape[3])], 2)

        grown = [(widen(layer.keys), widen(layer.values)) for layer in self.cache.layers]
        for rows, w, kw in ((wide, width, image_kw), (narrow, 1, {})):
            if not rows:
                continue
            idx = self.link.index(rows)
            sub = DynamicCache(ddp_cache_data=[(layer.keys[idx], layer.values[idx]) for layer in self.cache.layers])
            mask = torch.cat([self.mask[idx, :old_len], self.mask[idx, old_len + width - w :]], 1)
            out = self.model(
                input_ids=ids[idx, width - w :],
                attention_mask=mask,
                position_ids=positions_for_model(pos[:, idx, width - w :]),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kw: sub},
                **kw,
            )
            for (k, v), layer in zip(grown, sub.layers):
                k[idx, :, old_len + width - w :] = layer.keys[:, :, old_len:]
                v[idx, :, old_len + width - w :] = layer.values[:, :, old_len:]
            part = out.logits[:, -1].float()
            if logits is None:
                logits = part.new_zeros(B, part.shape[-1])  # rows with an empty chunk keep zeros (never read)
            logits[idx] = part
            self.forwards += 1
            self.slots += len(rows) * w
            self.kv_reads += len(rows) * w * (old_len + w)
        for (k, v), layer in zip(grown, self.cache.layers):
            layer.keys, layer.values = k, v
        return logits

    def select(self, rows: Sequence[int], idx: torch.Tensor | None = None) -> None:
        """Keep (or repeat) `rows` of the batch, in that order (`idx`: the same rows already on the device)."""
        rows = list(rows)
        if rows == list(range(self.batch)):  # nothing moves (one row of a hybrid model: its states stay)
            return
        idx = self.link.index(rows) if idx is None else idx
        for layer in self.cache.layers:
            if layer.keys is not None and layer.keys.numel():
                layer.keys, layer.values = layer.keys[idx], layer.values[idx]
        self.mask = self.mask[idx]
        self._keep_rows(rows)
        self._trim()

    def compact(self) -> None:
        """Squeeze the holes out: per row, gather its real slots and left-pad to the longest row."""
        real = self.mask.bool()
        keep = max(self.real)
        # a stable sort puts each row's holes first and its real slots after, in their order
        order = torch.sort(real.to(torch.int8), dim=1, stable=True).indices[:, -keep:]
        for layer in self.cache.layers:
            if layer.keys is not None and layer.keys.numel():
                B, H, _, D = layer.keys.shape
                g = order[:, None, :, None].expand(B, H, keep, D)
                layer.keys, layer.values = layer.keys.gather(2, g), layer.values.gather(2, g)
        self.mask = self.mask.gather(1, order)
        self._compacted(keep)

    def _trim(self) -> None:
        """Drop leading columns that no row uses (left after the longest row left the batch)."""
        first = self._leading_holes()
        if first:
            for layer in self.cache.layers:
                if layer.keys is not None and layer.keys.numel():
                    layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
            self.mask = self.mask[:, first:]
            self.first = [f - first for f in self.first]
