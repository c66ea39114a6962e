"""The static KV cache (`RolloutConfig.cache="static"`): the lock-step cache in preallocated buffers, its decode
step replayed as one CUDA graph per batch-size bucket.

Layout and meaning are `SharedCache`'s (`r3lab.engine.cache`): one left-padded chunk per row and step, holes
masked, explicit per-row positions, the same compactions at the same moments, so the same logits. What
differs is where keys live: buffers of rows x slots allocated once per model (`Pool`, kept between rollouts,
`release_pool` frees it) and written in place through transformers' cache API (`SlotLayer`, a
`CacheLayerMixin` that writes at given slots and hands attention a window of its buffer). Dropping rows,
squeezing holes and trimming columns copy inside the buffers; nothing is reallocated per step.

The prompts' prefill runs as in the dynamic cache, then moves into the buffers. A decode step (rows each
appending one token) reads only static inputs: ids, positions, the slot mask as a 4-D mask and the write
slot; with graphs (`RolloutConfig.cuda_graphs`) it is captured once per bucket (1, 2, 4, ... rows; the
rows past the live ones are dummies) and replayed. A step that inserts crops or notes runs the one-token rows
through that same step and the inserting rows eagerly into the same buffers.
"""
from __future__ import annotations

import weakref
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from PIL import Image
from transformers import DynamicCache
from transformers.cache_utils import Cache, CacheLayerMixin

from ..core.rope import positions_for_model
from . import graphs
from .cache import SharedCache
from .timing import Clock

if TYPE_CHECKING:
    from ..model.policy import Policy

ALIGN = 64  # slots are allocated in multiples of this (aligned mask rows for the fused attention kernels)


@dataclass
class _Window:
    """What the layers of one forward share: the write slots and how many slots attention sees."""

    at: torch.Tensor  # slots written by this forward (device, long)
    window: int  # attention reads slots [0, window)
    offset: int  # slots before this forward's chunk (the causal mask's query offset)


class SlotLayer(CacheLayerMixin):
    """One layer's keys and values in a static buffer: `update` writes at `at` and returns the window."""

    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, win: _Window):
        super().__init__()
        self.keys, self.values, self.win = keys, values, win
        self.device, self.is_initialized = keys.device, True

    def lazy_initialization(self, key_states, value_states) -> None:  # allocated by the pool
        pass

    def update(self, key_states, value_states, *args, **kwargs):
        self.keys.index_copy_(2, self.win.at, key_states)
        self.values.index_copy_(2, self.win.at, value_states)
        w = self.win.window
        return self.keys[:, :, :w], self.values[:, :, :w]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.win.window, 0

    def get_seq_length(self) -> int:
        return self.win.offset

    def get_max_length(self) -> int:
        return self.keys.shape[2]


class Pool:
    """Buffers for up to `rows` rows of `slots` slots, and the decode steps captured over them."""

    def __init__(self, policy: "Policy", rows: int, slots: int, like: Sequence[tuple], fingerprint: tuple):
        dev = policy.device
        self.rows, self.slots, self.like, self.fingerprint = rows, slots, tuple(like), fingerprint
        self.kv = [(torch.zeros(rows, h, slots, d, dtype=dt, device=dev), torch.zeros(rows, h, slots, d, dtype=dt,
                                                                                        device=dev))
                   for h, d, dt in like]
        self.valid = torch.zeros(rows, slots, dtype=torch.bool, device=dev)
        self.ids = torch.full((rows, 1), policy.pad_id, dtype=torch.long, device=dev)
        self.pos = torch.zeros(policy.position_dims, rows, 1, dtype=torch.long, device=dev)
        self.at = torch.zeros(1, dtype=torch.long, device=dev)
        vocab = int(policy.model.get_output_embeddings().weight.shape[0])
        self.out = torch.zeros(rows, vocab, dtype=torch.float32, device=dev)
        self.steps: dict[int, object] = {}  # bucket -> replay
        self.mempool = graphs.graph_pool(dev)
        self.broken = ""  # why capture failed under cuda_graphs="auto" (then eager from here on)

    def fits(self, rows: int, slots: int, like, fingerprint) -> bool:
        return (rows <= self.rows and slots <= self.slots and tuple(like) == self.like
                and fingerprint == self.fingerprint)

    def cache(self, rows: int, win: _Window) -> Cache:
        """A transformers Cache over the first `rows` rows of the buffers (views: writes land in the pool)."""
        return Cache(layers=[SlotLayer(k[:rows], v[:rows], win) for k, v in self.kv])


_POOLS: "weakref.WeakKeyDictionary[torch.nn.Module, Pool]" = weakref.WeakKeyDictionary()


def release_pool(policy: "Policy") -> bool:
    """Free the static cache's buffers and captured graphs kept for `policy` (the next static rollout makes new
    ones); returns whether there were any."""
    return _POOLS.pop(policy.model, None) is not None


def _fingerprint(model: torch.nn.Module) -> tuple:
    """What a captured step depends on besides its inputs: where the weights live (a graph reads them by address:
    moved or recast weights need new graphs), the attention kernel, and the forward hooks (a graph replays the
    hooks that ran when it was recorded and no others; the timing clock's, on the vision tower, do not count)."""
    hooks = tuple((i, tuple(k for k, f in h.items() if not getattr(f, "r3lab_timing", False)))
                  for i, m in enumerate(model.modules()) for h in (m._forward_pre_hooks, m._forward_hooks) if h)
    return (tuple(t.data_ptr() for t in model.parameters()), tuple(t.data_ptr() for t in model.buffers()),
            str(getattr(model.config, "_attn_implementation", "")), tuple(x for x in hooks if x[1]))


def crop_tokens(policy: "Policy") -> int:
    """Tokens of the largest crop the view allows (a square at `crop_max_pixels`), for sizing the buffers."""
    view = policy.view
    side = max(view.factor, int(view.crop_max_pixels ** 0.5) // view.factor * view.factor)
    _, grid = policy.encode_images([Image.new("RGB", (side, side))])
    return len(policy.image_ids(tuple(int(v) for v in grid[0])))


def _round(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class StaticSharedCache(SharedCache):
    """`SharedCache` over a `Pool`: same appends, selections and compactions, written in place."""

    def __init__(self, policy: "Policy", batch: int, reserve: int, cuda_graphs=False, clock=None):
        super().__init__(policy, batch)
        self.reserve = reserve  # slots to hold beyond the prompts (new tokens, crops, notes)
        self.setting, self.graphs = cuda_graphs, graphs.use_graphs(cuda_graphs, policy.device)
        self.clock = clock or Clock(policy.device, False)
        self.pool: Pool | None = None
        self._B = self._L = 0
        self.replays = self.captures = self.regrows = 0
        self._attn = str(getattr(policy.model.config, "_attn_implementation", "sdpa") or "sdpa")

    @property
    def batch(self) -> int:
        return self.mask.shape[0] if self.pool is None else self._B

    @property
    def length(self) -> int:
        return self.mask.shape[1] if self.pool is None else self._L

    # -- moving in, growing -------------------------------------------------------------------------
    def _freeze(self) -> None:
        """Move the prefilled dynamic cache into a pool (reused when it fits: its graphs stay valid)."""
        B, L = self.mask.shape
        layers = self.cache.layers
        like = [(layer.keys.shape[1], layer.keys.shape[3], layer.keys.dtype) for layer in layers]
        self._pool_for(B, L + self.reserve, like)
        for (k, v), layer in zip(self.pool.kv, layers):
            k[:B, :, :L].copy_(layer.keys)
            v[:B, :, :L].copy_(layer.values)
        self.pool.valid.zero_()
        self.pool.valid[:B, :L] = self.mask.bool()
        self._B, self._L = B, L
        self.cache, self.mask = None, None  # from here on the pool holds them

    def _pool_for(self, rows: int, slots: int, like) -> None:
        model = self.policy.model
        fp = _fingerprint(model)
        old = _POOLS.get(model)
        if old is not None and old.fits(rows, slots, like, fp):
            self.pool = old
            return
        if old is not None and old.like == tuple(like) and old.fingerprint == fp:  # grow to cover both
            rows, slots = max(rows, old.rows), max(slots, old.slots)
        del old  # the old buffers go before the new ones take their memory
        _POOLS.pop(model, None)
        self.pool = _POOLS[model] = Pool(self.policy, rows, _round(slots), like, fp)

    def _room(self, width: int) -> None:
        """Make `width` free slots at the end: squeeze holes out, else grow the pool (its graphs are re-captured)."""
        if self._L + width <= self.pool.slots:
            return
        if max(self.real) < self._L:
            self.compact()
        if self._L + width <= self.pool.slots:
            return
        old, B, L = self.pool, self._B, self._L
        with self._upkeep():
            _POOLS.pop(self.policy.model, None)
            self.pool = _POOLS[self.policy.model] = Pool(self.policy, old.rows, _round(max(L + width + self.reserve,
                                                                                              old.slots * 3 // 2)),
                                                         old.like, old.fingerprint)
            for (k, v), (ok, ov) in zip(self.pool.kv, old.kv):
                k[:B, :, :L].copy_(ok[:B, :, :L])
                v[:B, :, :L].copy_(ov[:B, :, :L])
            self.pool.valid[:B, :L] = old.valid[:B, :L]
        self.regrows += 1

    def _upkeep(self):
        return self.clock.part("cache_upkeep")

    # -- one step ---------------------------------------------------------------------------------------
    def append(self, chunks: Sequence[Sequence[int]], grids: Sequence[Sequence] | None = None,
               pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        if self.pool is None:
            if self.mask.shape[1] == 0:  # the prompts' prefill: as the dynamic cache does it
                return super().append(chunks, grids, pixel_values)
            self._freeze()
        ids, pos, step_mask = self._layout(chunks, grids)
        B, width = ids.shape
        self._room(width)
        pool, L0 = self.pool, self._L
        dev = self.device
        pool.valid[:B, L0:L0 + width] = step_mask.to(dev, torch.bool)
        narrow = [b for b, c in enumerate(chunks) if len(c) == 1]
        wide = [b for b, c in enumerate(chunks) if len(c) > 1]
        logits = None
        if narrow:  # every row runs the one-token step; an inserting row's slot is overwritten just below
            logits = self._decode(ids[:, -1:].to(dev), pos[:, :, -1:].to(dev), L0 + width - 1)
        if wide:
            kw = {}
            if pixel_values is not None:
                kw = self.policy.vision_inputs(pixel_values, [tuple(g) for gs in (grids or []) for g in gs])
            part = self._insert(wide, ids.to(dev), pos.to(dev), L0, width, kw)
            if logits is None:
                logits = part.new_zeros(B, part.shape[-1])  # rows with an empty chunk keep zeros (never read)
            logits[torch.as_tensor(wide, device=dev)] = part
        self._L = L0 + width
        return logits

    def _decode(self, ids: torch.Tensor, pos: torch.Tensor, slot: int) -> torch.Tensor:
        """The one-token step for the live rows at `slot`: static inputs in, the bucket's step run, logits out."""
        pool, B = self.pool, self._B
        pool.ids[:B].copy_(ids)
        pool.pos[:, :B].copy_(pos)
        pool.at.fill_(slot)
        if self.graphs and not pool.broken:
            b = bucket(B, pool.rows)
            if b > B:  # the bucket's rows past the live ones get a slot to attend to: a fully masked row is NaN
                pool.valid[B:b, slot] = True
            step = pool.steps.get(b) or self._capture(b)
            window = pool.slots
            self.replays += not pool.broken  # after a failed capture this one step runs eagerly
        else:
            b, window = B, slot + 1
            step = self._step(b, window)
        step()
        self.forwards += 1
        self.slots += b
        self.kv_reads += b * window
        return pool.out[:B].clone()

    def _step(self, b: int, window: int):
        """The decode step over the first `b` rows and `window` slots, reading only the pool's static buffers."""
        pool, model = self.pool, self.model
        cache = pool.cache(b, _Window(pool.at, window, window - 1))
        valid = pool.valid[:b, None, None, :window]
        ids, pos = pool.ids[:b], positions_for_model(pool.pos[:, :b])
        dtype = pool.kv[0][0].dtype
        kw = {self._cache_kw: cache}

        def step():
            mask = valid if "sdpa" in self._attn else torch.zeros(valid.shape, dtype=dtype, device=valid.device) \
                .masked_fill_(~valid, torch.finfo(dtype).min)  # eager attention adds its mask
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1, **kw)
            pool.out[:b].copy_(out.logits[:, -1])

        return step

    def _capture(self, b: int):
        pool = self.pool
        step = self._step(b, pool.slots)
        try:
            with self.clock.part("capture"):
                pool.steps[b] = graphs.capture(step, self.device, pool.mempool)
        except RuntimeError as e:
            if self.setting is True:
                raise
            pool.broken = f"{type(e).__name__}: {e}"
            warnings.warn(f"capturing the decode step as a CUDA graph failed ({pool.broken}); this model's rollouts "
                          "decode eagerly over the static cache from here on (cuda_graphs=True raises instead)",
                          stacklevel=2)
            return step
        self.captures += 1
        return pool.steps[b]

    def _insert(self, wide: list[int], ids, pos, L0: int, width: int, image_kw: dict) -> torch.Tensor:
        """The rows that insert a crop or a note, eagerly, their keys written into the pool at [L0, L0 + width)."""
        pool, B = self.pool, self._B
        n = len(wide)
        if n == B:  # every row inserts: straight into the buffers
            win = _Window(torch.arange(L0, L0 + width, device=self.device), L0 + width, L0)
            out = self.model(input_ids=ids, attention_mask=pool.valid[:B, :L0 + width],
                             position_ids=positions_for_model(pos), use_cache=True, logits_to_keep=1,
                             **{self._cache_kw: pool.cache(B, win)}, **image_kw)
        else:  # those rows' keys copied out, run, and their new slots copied back
            idx = torch.as_tensor(wide, device=self.device)
            sub = DynamicCache(ddp_cache_data=[(k[idx, :, :L0], v[idx, :, :L0]) for k, v in pool.kv])
            out = self.model(input_ids=ids[idx], attention_mask=pool.valid[idx, :L0 + width],
                             position_ids=positions_for_model(pos[:, idx]), use_cache=True, logits_to_keep=1,
                             **{self._cache_kw: sub}, **image_kw)
            for (k, v), layer in zip(pool.kv, sub.layers):
                k[idx, :, L0:L0 + width] = layer.keys[:, :, L0:]
                v[idx, :, L0:L0 + width] = layer.values[:, :, L0:]
        self.forwards += 1
        self.slots += n * width
        self.kv_reads += n * width * (L0 + width)
        return out.logits[:, -1].float()

    # -- rows and holes, in place ---------------------------------------------------------------------
    def select(self, rows: Sequence[int]) -> None:
        if self.pool is None:
            return super().select(rows)
        rows = list(rows)
        n, L = len(rows), self._L
        if n > self.pool.rows:
            raise ValueError(f"the static cache holds {self.pool.rows} rows; {n} asked for")
        if rows != list(range(n)):
            idx = torch.as_tensor(rows, device=self.device)
            with self._upkeep():
                for k, v in self.pool.kv:
                    k[:n, :, :L] = k[idx, :, :L]
                    v[:n, :, :L] = v[idx, :, :L]
                self.pool.valid[:n, :L] = self.pool.valid[idx, :L]
        self._B = n
        self.next_pos = [self.next_pos[i] for i in rows]
        self.real = [self.real[i] for i in rows]
        self._trim()

    def compact(self) -> None:
        if self.pool is None:
            return super().compact()
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
            pool.valid[:B, keep:L] = False
        self._L = keep
        self.compactions += 1

    def _trim(self) -> None:
        if self.pool is None:
            return super()._trim()
        B, L, pool = self._B, self._L, self.pool
        if not L or max(self.real) == L:
            return
        used = pool.valid[:B, :L].any(0)
        if bool(used[0]):
            return
        first = int(used.long().argmax()) if bool(used.any()) else L
        with self._upkeep():
            for k, v in pool.kv:
                k[:B, :, :L - first] = k[:B, :, first:L].clone()
                v[:B, :, :L - first] = v[:B, :, first:L].clone()
            pool.valid[:B, :L - first] = pool.valid[:B, first:L].clone()
            pool.valid[:B, L - first:L] = False
        self._L = L - first


def bucket(rows: int, most: int) -> int:
    """The batch bucket whose captured step runs `rows` live rows: the next power of two, at most the pool's rows."""
    return min(most, 1 << max(0, rows - 1).bit_length())
