"""The static KV cache (`cache="static"`): the lock-step cache in preallocated buffers, its decode step replayed as
one CUDA graph per batch bucket and attention window.

Layout and meaning are `SharedCache`'s (`r3lab.engine.cache`): one left-padded chunk per row and step, holes
masked, explicit per-row positions, the same compactions at the same moments, so the same logits. What differs is
where keys live: a `Pool` of rows x slots kept on the policy between rollouts (`r3lab.engine.pool`) and written in
place through transformers' cache API. Dropping rows, squeezing holes and trimming columns copy inside the buffers;
nothing is reallocated per step.

The prompts' prefill runs in a `SharedCache`; `StaticSharedCache.from_prefill` moves it into the policy's pool and,
with graphs, captures every step the rollout can reach before its first. A decode step (every row appends the token
it just sampled) reads only static inputs: the sampled ids, straight from the device; positions, each row's next
one, kept on the device; the slot mask and the write slot, filled there. So it needs nothing from the host. A step
that inserts crops or notes sends its layout in one copy, runs the one-token rows through that same step and the
inserting rows eagerly into the same buffers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from transformers import DynamicCache

from ..core.rope import positions_for_model
from . import graphs
from .cache import LockStep, SharedCache
from .pool import Pool, Window, bucket, grown, pool_for, window
from .timing import Clock

if TYPE_CHECKING:
    from ..model.policy import Policy


class StaticSharedCache(LockStep):
    """`SharedCache`'s appends, selections and compactions, over the buffers of a `Pool`, written in place."""

    def __init__(
        self,
        policy: "Policy",
        pool: Pool,
        prefill: SharedCache,
        reserve: int,
        cuda_graphs=False,
        clock: Clock | None = None,
        new_pool: bool = False,
    ):
        super().__init__(policy, prefill.batch, prefill.link)
        self.pool, self.reserve = pool, reserve  # reserve: slots kept past the live length for growth
        self.setting, self.graphs = cuda_graphs, graphs.use_graphs(cuda_graphs, policy.device)
        self.clock = clock or Clock(policy.device, False)
        self._B, self._L = prefill.batch, prefill.length
        for name in ("next_pos", "real", "first", "forwards", "slots", "kv_reads", "compactions"):
            setattr(self, name, getattr(prefill, name))
        self.replays = self.captures = self.regrows = 0
        self.decodes = self.window_slots = 0  # decode steps run, and the slots their attention read per row
        self.pools = int(new_pool)  # pools allocated by this cache (a regrow makes another)

    @classmethod
    def from_prefill(
        cls, prefill: SharedCache, reserve: int, cuda_graphs=False, clock: Clock | None = None
    ) -> "StaticSharedCache":
        """The prefilled dynamic cache moved into the policy's pool (reused when it fits: its graphs stay valid), and
        with graphs every step this rollout can reach captured, largest first."""
        policy, B, L = prefill.policy, prefill.batch, prefill.length
        layers = prefill.cache.layers
        like = [(layer.keys.shape[1], layer.keys.shape[3], layer.keys.dtype) for layer in layers]
        pool, new = pool_for(policy, B, L + reserve, like, prefill._cache_kw)
        sc = cls(policy, pool, prefill, reserve, cuda_graphs, clock, new)
        with sc._upkeep():
            for (k, v), layer in zip(pool.kv, layers):
                k[:B, :, :L].copy_(layer.keys)
                v[:B, :, :L].copy_(layer.values)
            pool.valid.zero_()
            pool.valid[:B, :L] = prefill.mask.bool()
            pool.next[:B].copy_(sc.link.send(torch.tensor(sc.next_pos))[0])
        sc._capture_ahead()
        return sc

    @property
    def batch(self) -> int:
        return self._B

    @property
    def length(self) -> int:
        return self._L

    def _upkeep(self):
        return self.clock.part("cache_upkeep")

    def _capture_ahead(self) -> None:
        if self.graphs:
            self.captures += self.pool.capture(self.pool.needed(self._B, self._L), self.setting, self.clock)

    def _room(self, width: int) -> None:
        """Make `width` free slots at the end: squeeze holes out, else grow the pool (captured again, once)."""
        if self._L + width <= self.pool.slots:
            return
        if max(self.real) < self._L:
            self.compact()
        if self._L + width <= self.pool.slots:
            return
        old, B, L = self.pool, self._B, self._L
        with self._upkeep():
            self.pool = new = grown(self.policy, old, max(L + width + self.reserve, old.slots * 3 // 2))
            for (k, v), (ok, ov) in zip(new.kv, old.kv):
                k[:B, :, :L].copy_(ok[:B, :, :L])
                v[:B, :, :L].copy_(ov[:B, :, :L])
            new.valid[:B, :L] = old.valid[:B, :L]
            new.next[:B] = old.next[:B]
        del old
        self.regrows += 1
        self.pools += 1
        self._capture_ahead()

    # -- one step -------------------------------------------------------------------------------------------------
    def append(
        self,
        chunks: Sequence[Sequence[int]],
        grids: Sequence[Sequence] | None = None,
        pixel_values: torch.Tensor | None = None,
        ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`SharedCache.append`; with `ids` (the one-token chunks, already on the device) a decode step moves nothing
        from the host."""
        B, pool = self._B, self.pool
        if ids is not None and all(len(c) == 1 for c in chunks):
            if len(chunks) != B:
                raise ValueError(f"{len(chunks)} chunks for a cache of {B} rows")
            self._room(1)
            pool, L0 = self.pool, self._L
            self.next_pos = [p + 1 for p in self.next_pos]
            self.real = [r + 1 for r in self.real]
            pool.valid[:B, L0].fill_(True)  # a kernel: no scalar copied from the host
            pool.ids[:B, 0].copy_(ids)
            pool.pos[:, :B, 0] = pool.next[:B]
            pool.next[:B] += 1
            self._L = L0 + 1
            return self._decode(L0)
        host = self._layout(chunks, grids)
        width = host[0].shape[1]
        self._room(width)
        pool, L0 = self.pool, self._L
        ids, pos, step_mask, nxt = self.link.send(*host, torch.tensor(self.next_pos))
        pool.valid[:B, L0 : L0 + width] = step_mask.bool()
        narrow = [b for b, c in enumerate(chunks) if len(c) == 1]
        wide = [b for b, c in enumerate(chunks) if len(c) > 1]
        logits = None
        if narrow:  # every row runs the one-token step; an inserting row's slot is overwritten just below
            pool.ids[:B].copy_(ids[:, -1:])
            pool.pos[:, :B].copy_(pos[:, :, -1:])
            logits = self._decode(L0 + width - 1)
        if wide:
            kw = {}
            if pixel_values is not None:
                kw = self.policy.vision_inputs(pixel_values, [tuple(g) for gs in (grids or []) for g in gs])
            part = self._insert(wide, ids, pos, L0, width, kw)
            if logits is None:
                logits = part.new_zeros(B, part.shape[-1])  # rows with an empty chunk keep zeros (never read)
            logits[self.link.index(wide)] = part
        pool.next[:B] = nxt
        self._L = L0 + width
        return logits

    def _decode(self, slot: int) -> torch.Tensor:
        """The one-token step for the live rows, their inputs in the pool's buffers, writing at `slot`."""
        pool, B = self.pool, self._B
        pool.at.fill_(slot)
        if self.graphs and not pool.broken:
            b, w = bucket(B, pool.rows), window(slot + 1, pool.slots)
            if b > B:  # the bucket's rows past the live ones get a slot to attend to: a fully masked row is NaN
                pool.valid[B:b, slot].fill_(True)
            step = pool.steps.get((b, w))
            if step is None:  # not reached ahead (a bug, or a pool that broke meanwhile): captured now, counted
                self.captures += pool.capture([(b, w)], self.setting, self.clock)
                step = pool.steps.get((b, w)) or pool.step(b, w)
                pool.at.fill_(slot)  # the capture's warm-up pointed it elsewhere
            self.replays += not pool.broken
        else:
            b, w = B, slot + 1
            step = pool.eager(b, w)
        step()
        self.forwards += 1
        self.decodes += 1
        self.window_slots += w
        self.slots += b
        self.kv_reads += b * w
        return pool.out[:B].clone()

    def _insert(self, wide: list[int], ids, pos, L0: int, width: int, image_kw: dict) -> torch.Tensor:
        """The rows that insert a crop or a note, eagerly, their keys written into the pool at [L0, L0 + width)."""
        pool, B = self.pool, self._B
        n = len(wide)
        if n == B:  # every row inserts: straight into the buffers
            win = Window(torch.arange(L0, L0 + width, device=self.device), L0 + width, L0)
            out = self.model(
                input_ids=ids,
                attention_mask=pool.valid[:B, : L0 + width],
                position_ids=positions_for_model(pos),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kw: pool.cache(B, win)},
                **image_kw,
            )
        else:  # those rows' keys copied out, run, and their new slots copied back
            idx = self.link.index(wide)
            sub = DynamicCache(ddp_cache_data=[(k[idx, :, :L0], v[idx, :, :L0]) for k, v in pool.kv])
            out = self.model(
                input_ids=ids[idx],
                attention_mask=pool.valid[idx, : L0 + width],
                position_ids=positions_for_model(pos[:, idx]),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kw: sub},
                **image_kw,
            )
            for (k, v), layer in zip(pool.kv, sub.layers):
                k[idx, :, L0 : L0 + width] = layer.keys[:, :, L0:]
                v[idx, :, L0 : L0 + width] = layer.values[:, :, L0:]
        self.forwards += 1
        self.slots += n * width
        self.kv_reads += n * width * (L0 + width)
        return out.logits[:, -1].float()

    # -- rows and holes, in place ---------------------------------------------------------------------------------
    def select(self, rows: Sequence[int], idx: torch.Tensor | None = None) -> None:
        """Keep `rows` (in that order; `idx`: the same rows already on the device)."""
        rows = list(rows)
        n, L = len(rows), self._L
        if n > self.pool.rows:
            raise ValueError(f"the static cache holds {self.pool.rows} rows; {n} asked for")
        if rows != list(range(n)):
            idx = self.link.index(rows) if idx is None else idx
            with self._upkeep():
                for k, v in self.pool.kv:
                    k[:n, :, :L] = k[idx, :, :L]
                    v[:n, :, :L] = v[idx, :, :L]
                self.pool.valid[:n, :L] = self.pool.valid[idx, :L]
                self.pool.next[:n] = self.pool.next[idx]
        self._B = n
        self._keep_rows(rows)
        self._trim()

    def compact(self) -> None:
        B, L, pool = self._B, self._L, self.pool
        keep = max(self.real)
        with self._upkeep():
            valid = pool.valid[:B, :L]
            order = torch.sort(valid.to(torch.int8), dim=1, stable=True).indices[:, -keep:]
            for k, v in pool.kv:
                g = order[:, None, :, None].expand(B, k.shape[1], keep, k.shape[3])
                k[:B, :, :keep] = k[:B, :, :L].gather(2, g)
                v[:B, :, :keep] = v[:B, :, :L].gather(2, g)
            pool.valid[:B, :keep] = valid.gather(1, order)
            pool.valid[:B, keep:L].fill_(False)
        self._L = keep
        self._compacted(keep)

    def _trim(self) -> None:
        first = self._leading_holes()
        if not first:
            return
        B, L, pool = self._B, self._L, self.pool
        with self._upkeep():
            for k, v in pool.kv:
                k[:B, :, : L - first] = k[:B, :, first:L].clone()
                v[:B, :, : L - first] = v[:B, :, first:L].clone()
            pool.valid[:B, : L - first] = pool.valid[:B, first:L].clone()
            pool.valid[:B, L - first : L].fill_(False)
        self._L = L - first
        self.first = [f - first for f in self.first]
