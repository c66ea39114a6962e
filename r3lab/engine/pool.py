"""The static cache's buffers and the decode steps captured over them (`Pool`), kept per policy between rollouts.

A pool holds rows x slots of keys and values per layer, the slot mask, the static inputs of a decode step (ids,
positions, the write slot) and each row's next position, and the steps recorded as CUDA graphs: one per batch
bucket (1, 2, 4, 8, then steps of 8) and attention window (`WINDOW` slots, doubled up to the pool's slots), so
attention reads about the live length rather than the whole buffer. What a rollout can reach is captured before its
first step, largest first (`Pool.capture`); a pool that grows is a new pool, captured once again.

Pools live on the policy (`Policy.engine_state`, not in a module-global table): `pool_for` reuses the one there
when it fits and its key still holds, else frees it before allocating the next; `release_pool` frees it. The key
(`fingerprint`) is what a recorded step depends on besides its inputs: where each weight lives and its dtype and
shape, the attention kernel, forward hooks, and the adapters' state (peft's merged / disabled / active adapters and
scaling are Python the graph bakes in). `reserve` sizes the slots a rollout needs past its prompts.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from PIL import Image
from transformers.cache_utils import Cache, CacheLayerMixin

from ..core.rope import positions_for_model
from . import graphs

if TYPE_CHECKING:
    from ..model.policy import Policy
    from .config import RolloutConfig
    from .timing import Clock

ALIGN = 64  # slots are allocated in multiples of this (aligned mask rows for the fused attention kernels)
WINDOW = 256  # the smallest attention window a captured step reads; windows double up to the pool's slots


@dataclass
class Window:
    """What the layers of one forward share: the write slots and how many slots attention sees."""

    at: torch.Tensor  # slots written by this forward (device, long)
    window: int  # attention reads slots [0, window)
    offset: int  # slots before this forward's chunk (the causal mask's query offset)


class SlotLayer(CacheLayerMixin):
    """One layer's keys and values in a static buffer: `update` writes at `at` and returns the window."""

    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, win: Window):
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


def bucket(rows: int, most: int) -> int:
    """The batch bucket whose captured step runs `rows` live rows: 1, 2, 4, 8, then the next multiple of 8, at most
    the pool's rows (steps of 8 as vLLM and SGLang: 33 live rows run as 40, not 64)."""
    b = 1 << max(0, rows - 1).bit_length() if rows <= 8 else -(-rows // 8) * 8
    return min(most, b)


def window(slots: int, most: int) -> int:
    """The attention window a captured step reads to cover `slots` slots: `WINDOW` doubled, at most the pool's."""
    w = WINDOW
    while w < slots:
        w *= 2
    return min(most, w)


def _round(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class Pool:
    """Buffers for up to `rows` rows of `slots` slots, and the decode steps captured over them."""

    def __init__(self, policy: "Policy", rows: int, slots: int, like: Sequence[tuple], key: tuple, cache_kw: str):
        dev = policy.device
        self.rows, self.slots, self.like, self.key = rows, slots, tuple(like), key
        self.model, self.device, self._cache_kw = policy.model, dev, cache_kw
        text = policy.model.config.get_text_config()  # the decoder's kernel (a text-only change counts)
        self._attn = str(getattr(text, "_attn_implementation", None) or "sdpa")
        self.kv = [
            (torch.zeros(rows, h, slots, d, dtype=dt, device=dev), torch.zeros(rows, h, slots, d, dtype=dt, device=dev))
            for h, d, dt in like
        ]
        self.valid = torch.zeros(rows, slots, dtype=torch.bool, device=dev)
        self.ids = torch.full((rows, 1), policy.pad_id, dtype=torch.long, device=dev)
        self.pos = torch.zeros(policy.position_dims, rows, 1, dtype=torch.long, device=dev)
        self.next = torch.zeros(rows, dtype=torch.long, device=dev)  # each row's next position (decode steps)
        self.at = torch.zeros(1, dtype=torch.long, device=dev)
        vocab = int(policy.model.get_output_embeddings().weight.shape[0])
        self.out = torch.zeros(rows, vocab, dtype=torch.float32, device=dev)
        self.bytes = sum(t.numel() * t.element_size() for kv in self.kv for t in kv) + self.out.numel() * 4
        self.steps: dict[tuple[int, int], Callable[[], None]] = {}  # (rows bucket, window) -> replay
        self._eager: dict[int, tuple] = {}  # rows -> (window, cache) of the eager step
        self.mempool = graphs.graph_pool(dev)
        self.graph_bytes = 0  # what the captures took from the device (memory reserved by their shared pool)
        self.capture_s = 0.0  # seconds spent capturing
        self.broken = ""  # why capture failed under cuda_graphs="auto" (then eager from here on)

    def fits(self, rows: int, slots: int, like, key) -> bool:
        return rows <= self.rows and slots <= self.slots and tuple(like) == self.like and key == self.key

    def cache(self, rows: int, win: Window) -> Cache:
        """A transformers Cache over the first `rows` rows of the buffers (views: writes land in the pool)."""
        return Cache(layers=[SlotLayer(k[:rows], v[:rows], win) for k, v in self.kv])

    def step(self, b: int, width: int) -> Callable[[], None]:
        """The decode step over the first `b` rows and `width` slots, reading only the pool's static buffers (what a
        graph records: its cache and window fixed)."""
        return self._run(b, width, self.cache(b, Window(self.at, width, width - 1)))

    def eager(self, b: int, width: int) -> Callable[[], None]:
        """The same step run eagerly over exactly `width` slots: one cache per row count, its window moved."""
        if b not in self._eager:
            win = Window(self.at, width, width - 1)
            self._eager[b] = (win, self.cache(b, win))
        win, cache = self._eager[b]
        win.window, win.offset = width, width - 1
        return self._run(b, width, cache)

    def _run(self, b: int, width: int, cache: Cache) -> Callable[[], None]:
        model, valid = self.model, self.valid[:b, None, None, :width]
        ids, pos, kw = self.ids[:b], positions_for_model(self.pos[:, :b]), {self._cache_kw: cache}
        dtype, sdpa = self.kv[0][0].dtype, "sdpa" in self._attn

        def step():
            mask = (
                valid
                if sdpa
                else torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill_(
                    ~valid, torch.finfo(dtype).min
                )
            )  # eager attention adds its mask
            with graphs.attention_kernel(self.device):
                out = model(
                    input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1, **kw
                )
            self.out[:b].copy_(out.logits[:, -1])

        return step

    def needed(self, rows: int, length: int) -> list[tuple[int, int]]:
        """The (rows bucket, window) steps a rollout of `rows` rows at `length` slots can reach, largest first."""
        bs = sorted({bucket(n, self.rows) for n in range(1, rows + 1)}, reverse=True)
        ws, w = [], window(length + 1, self.slots)
        while True:
            ws.append(w)
            if w >= self.slots:
                break
            w = window(w + 1, self.slots)
        return [(b, w) for b in bs for w in sorted(ws, reverse=True)]

    def capture(self, pairs: Sequence[tuple[int, int]], setting, clock: "Clock") -> int:
        """Record the steps of `pairs` not recorded yet (before a rollout's first step); returns how many. Under
        cuda_graphs="auto" a failure leaves `broken` set (eager decoding from here on), under True it raises."""
        todo = [p for p in pairs if p not in self.steps]
        if not todo or self.broken:
            return 0
        self.at.fill_(self.slots - 1)  # the warm-up runs write there: a slot no row holds yet
        before = torch.cuda.memory_reserved(self.device) if self.device.type == "cuda" else 0
        done = 0
        with clock.part("capture"):
            t0 = time.perf_counter()
            for b, w in todo:
                try:
                    self.steps[b, w] = graphs.capture(self.step(b, w), self.device, self.mempool, first=not done)
                except RuntimeError as e:
                    if setting is True:
                        raise
                    self.broken = f"{type(e).__name__}: {e}"
                    warnings.warn(
                        f"capturing the decode step as a CUDA graph failed ({self.broken}); this model's "
                        "rollouts decode eagerly over the static cache from here on (the rollout's stats "
                        "say so in `graphs`; cuda_graphs=True raises instead)",
                        stacklevel=3,
                    )
                    break
                done += 1
            self.capture_s += time.perf_counter() - t0
        if self.device.type == "cuda":
            self.graph_bytes += torch.cuda.memory_reserved(self.device) - before
        return done


# -- pools kept per policy -----------------------------------------------------------------------------------------
def fingerprint(model: torch.nn.Module) -> tuple:
    """What a captured step depends on besides its inputs (see the module docstring). The timing clock's hooks on the
    vision tower do not count; weights the optimizer updates in place keep their addresses and their graphs."""
    hooks = tuple(
        (i, tuple(k for k, f in h.items() if not getattr(f, "r3lab_timing", False)))
        for i, m in enumerate(model.modules())
        for h in (m._forward_pre_hooks, m._forward_hooks)
        if h
    )
    adapters = tuple(
        (
            i,
            bool(m.merged),
            bool(m.disable_adapters),
            tuple(m.active_adapters),
            tuple(sorted((k, float(v)) for k, v in m.scaling.items())),
        )
        for i, m in enumerate(model.modules())
        if hasattr(m, "merged") and hasattr(m, "scaling")
    )
    cfg = model.config
    attn = (getattr(cfg, "_attn_implementation", ""), getattr(cfg.get_text_config(), "_attn_implementation", ""))
    return (
        tuple((t.data_ptr(), t.dtype, tuple(t.shape)) for t in model.parameters()),
        tuple((t.data_ptr(), t.dtype) for t in model.buffers()),
        tuple(map(str, attn)),
        tuple(x for x in hooks if x[1]),
        adapters,
    )


def kept(policy: "Policy") -> dict:
    """The engine's state kept on the policy between rollouts (a Policy field; any other object gets one)."""
    state = getattr(policy, "engine_state", None)
    if state is None:
        state = policy.engine_state = {}
    return state


def pool_for(policy: "Policy", rows: int, slots: int, like, cache_kw: str) -> tuple[Pool, bool]:
    """The policy's pool when it holds `rows` x `slots` for this model as it is now; else a new one (covering the old
    one's size when only the size fell short), the old one freed first. Returns it and whether it is new."""
    state, key = kept(policy), fingerprint(policy.model)
    old = state.get("pool")
    if old is not None and old.fits(rows, slots, like, key):
        return old, False
    if old is not None and old.like == tuple(like) and old.key == key:  # grow to cover both
        rows, slots = max(rows, old.rows), max(slots, old.slots)
    del old
    state.pop("pool", None)  # the old buffers and graphs go before the new ones take their memory
    state["pool"] = Pool(policy, rows, _round(slots), like, key, cache_kw)
    return state["pool"], True


def grown(policy: "Policy", old: Pool, slots: int) -> Pool:
    """A larger pool in the old one's place (the caller copies the live slots over, then drops the old one)."""
    kept(policy)["pool"] = new = Pool(policy, old.rows, _round(slots), old.like, old.key, old._cache_kw)
    return new


def release_pool(policy: "Policy") -> bool:
    """Free the static cache's buffers and captured graphs kept for `policy` (the next static rollout makes new
    ones); returns whether there were any."""
    return kept(policy).pop("pool", None) is not None


# -- sizing --------------------------------------------------------------------------------------------------------
def crop_tokens(policy: "Policy") -> int:
    """Tokens of the largest crop the view allows (a square at `crop_max_pixels`), for sizing the buffers."""
    view = policy.view
    side = max(view.factor, int(view.crop_max_pixels**0.5) // view.factor * view.factor)
    _, grid = policy.encode_images([Image.new("RGB", (side, side))])
    return len(policy.image_ids(tuple(int(v) for v in grid[0])))


NOTE_TOKENS = 16  # a refused call's note, or a tool turn's markers around a crop
SLACK = 32  # lock-step padding: a row's chunk is left-padded to the widest of its step


def reserve(policy: "Policy", cfg: "RolloutConfig") -> int:
    """Slots a rollout's rows need past their prompts: the token budget, and every crop at its largest with its
    markers. The holes lock-step padding adds (a crop step widens every row) are squeezed out when room runs short;
    only real slots beyond this grow the pool."""
    crops = min(cfg.max_crops, cfg.max_images - 1)
    return cfg.max_new_tokens + crops * (crop_tokens(policy) + NOTE_TOKENS) + SLACK
