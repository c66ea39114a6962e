"""`rollout`: interleaved rollouts, the model writes, asks for a crop, sees the zoomed crop, writes on.

`rollout(policy, samples)` generates all G copies of several prompts as one batch in lock-step
over one shared KV cache (`r3lab.engine.cache`). When a row's crop call closes, exactly at the token
that closes it, the row's segment ends; a valid call appends the zoomed crop's tokens to that row's
cache with positions that continue the row, an invalid one appends a short env note; nothing the
model wrote is deleted or re-tokenised. `mode="reference"` runs the official VLM-R3 loop instead:
one trajectory at a time, re-prefilling the whole context (every image re-encoded) after each crop.
Both drive the same per-trajectory state machine (`Episode`, `r3lab.engine.environment`), so they
produce the same tokens under greedy decoding and differ only in cost.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..core.env import progress_disabled
from ..core.trajectory import Trajectory
from ..data.sample import Sample
from ..model.adapters import base_model
from .budget import check_budget
from .cache import Feed, SharedCache, recurrent
from .config import RolloutConfig
from .environment import BoxFn, Episode, IdsFn, ImageFn, Script
from .graphs import use_graphs
from .sampling import banned_ids, brace_table, choose
from .static_cache import StaticSharedCache, crop_tokens
from .timing import Clock

if TYPE_CHECKING:
    from ..model.policy import Policy


def rollout(policy: "Policy", samples: "Sample | Sequence[Sample]", config: RolloutConfig | None = None, *,
            group_size: int | None = None, scripts: Sequence[Script] | None = None,
            progress: bool | Callable[[int, int], None] | None = None,
            logits_hook: Callable[[list[int], torch.Tensor], None] | None = None,
            stats: dict | None = None, crop_boxes: BoxFn | None = None,
            crop_images: ImageFn | None = None, crop_ids: IdsFn | None = None) -> list[Trajectory]:
    """Generate `group_size` interleaved trajectories per sample (sample 0's copies first).

    Each Trajectory records its sampled ids verbatim, `Piece.logprobs` on every model_text piece
    (`log_softmax(logits / T)` at the chosen id over the full vocabulary, before special-token
    masking and top-p: what a teacher-forced forward at the same T recomputes), a CropEvent for
    every crop call (valid, refused or left open) and meta: group, sample_id, row, temperature,
    top_p, mode, n_crops, n_new_tokens and stop ("eos", "max_new_tokens", "max_segment_tokens" or
    "max_images").

    scripts: forced text per sample (or per output row): a str, a list of str (tokenised piece by
    piece, so a crop call can be made to end exactly at a piece boundary) or token ids. The model
    "writes" it token by token through the same loop (crop calls act, log-probs are recorded), then
    samples on from there. progress: None/True/False for a tqdm bar over finished trajectories, or
    a callable(done, total). logits_hook(row_ids, logits): called before every choice with the
    float32 next-token logits of the rows being decoded (tests and notebooks inspect them).
    stats: a dict that receives the engine's work counters (forwards, cache slots computed, slots
    attended over, compactions; with a static cache graph replays, captures and buffer growths), the cache
    kind, model tokens and seconds; with `config.timing` also `timing`, the cost by part (`r3lab.engine.timing`).
    crop_boxes(sample, k) -> box | None: the environment decides *where* (ablations: the oracle hands
    over the ground-truth region, a baseline a random box): a valid k-th crop call of a row on
    `sample` is honoured with this box (model-input frame) instead of the one written; the model
    still decides *when* and what to write. The CropEvent records the box actually used.
    crop_images(sample, k, piece, trajectory) -> image | None: what the k-th crop shows instead of its pixels
    (resized to the crop's size, so its tokens stay: tool-necessity ablations show a blank or the coarse view).
    crop_ids(sample, k, piece, trajectory) -> ids | None: token ids the k-th accepted call is answered with instead
    of the crop's image (audit ablations: the image markers alone, or dummy tokens); they enter as an env_text
    piece tagged "crop" that the call's CropEvent points to, positioned as text, with no pixels.
    A prompt may hold several images (a sample whose `prompt()` adds some): all are encoded at the prefill.
    """
    cfg = config or RolloutConfig()
    if group_size is not None:
        cfg = replace(cfg, group_size=group_size)
    if cfg.mode == "batched" and recurrent(policy) and (cfg.batch_rows != 1 or cfg.cache != "dynamic"):
        warnings.warn(f"{type(policy.model).__name__} has linear-attention layers whose recurrent state a lock-step KV "
                      "cache with holes cannot hold (holes would decay it): rolling out one trajectory at a time "
                      "instead, its cache and state kept across crops (exact; no re-prefill). Pass batch_rows=1, "
                      "cache='dynamic' to silence this.", stacklevel=2)
        cfg = replace(cfg, batch_rows=1, cache="dynamic", cuda_graphs="auto")
    if isinstance(samples, Sample):
        samples = [samples]
    samples = list(samples)
    if not samples:
        raise ValueError("rollout needs at least one sample")
    G, n = cfg.group_size, len(samples)
    if cfg.cuda_graphs is True:
        use_graphs(True, policy.device)  # a clear error before any work where there is no CUDA
    per_row = _scripts(policy, scripts, n, G)
    seed = cfg.seed if cfg.seed is not None else int(torch.randint(0, 2**62, (1,)))
    gen = torch.Generator(device=policy.device).manual_seed(seed)
    braces = brace_table(policy, policy.prompt.calls.grammar)
    rows = []
    for g, s in enumerate(samples):
        base = s.prompt(policy.view, policy.prompt).tokenize(policy)  # renders the image once per sample
        for c in range(G):
            i = g * G + c
            traj = base.copy()
            traj.meta.update(group=g, sample_id=s.sample_id, temperature=cfg.effective_temperature,
                             top_p=cfg.top_p, mode=cfg.mode, row=i)
            row = Episode(policy, traj, cfg, per_row[i], i, braces)
            if crop_boxes is not None:
                row.box_for = partial(crop_boxes, s)
            if crop_images is not None:
                row.image_for = partial(crop_images, s)
            if crop_ids is not None:
                row.ids_for = partial(crop_ids, s)
            rows.append(row)

    per_chunk = max(1, cfg.batch_rows // G) * G if G <= cfg.batch_rows else cfg.batch_rows
    check_budget(policy, [r.traj for r in rows[::G]], cfg.max_new_tokens,  # before any work: positions, memory
                 1 if cfg.mode == "reference" else max(1, per_chunk // G), torch.device(policy.device).type)
    bar = _Progress(progress, len(rows), f"rollout ({cfg.mode})")
    model = policy.model
    was_training = model.training
    model.eval()
    ban = torch.zeros(model.get_output_embeddings().weight.shape[0], device=policy.device)
    ban[banned_ids(policy)] = float("-inf")
    clock = Clock(policy.device, cfg.timing)
    engine = _Engine(policy, cfg, gen, ban, logits_hook, bar.update, clock)
    t0 = time.perf_counter()
    clock.watch_vision(model)
    try:
        with torch.inference_mode():
            if cfg.mode == "reference":
                for r in rows:
                    engine.reference(r)
            else:
                for a in range(0, len(rows), per_chunk):
                    engine.batched(rows[a:a + per_chunk])
    finally:
        model.train(was_training)
        inner = getattr(base_model(model), "model", None)
        if hasattr(inner, "rope_deltas"):
            inner.rope_deltas = None
        clock.close()
        bar.close()
    if stats is not None:
        stats.update(engine.counts, cache="static" if engine.static else "dynamic",
                     model_tokens=sum(r.n_new for r in rows), seconds=time.perf_counter() - t0)
        if cfg.timing:
            stats["timing"] = clock.report()
    return [r.traj for r in rows]


class _Progress:
    """A tqdm bar over finished trajectories, or a user callback(done, total)."""

    def __init__(self, progress, total: int, desc: str):
        self.fn, self.total, self.done = (progress if callable(progress) else None), total, 0
        quiet = progress is False or (progress is None and progress_disabled())
        self.bar = None if self.fn else tqdm(total=total, desc=desc, leave=False, disable=quiet)

    def update(self, k: int) -> None:
        if k:
            self.done += k
            self.fn(self.done, self.total) if self.fn else self.bar.update(k)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Engine:
    """Drives `Episode`s through the model: lock-step over a shared cache, or the reference loop."""

    def __init__(self, policy, cfg, gen, ban, hook, finished, clock):
        self.policy, self.cfg, self.gen, self.ban, self.hook, self.finished = policy, cfg, gen, ban, hook, finished
        self.clock = clock
        self.static = cfg.mode == "batched" and cfg.cache == "static"
        self.counts = dict.fromkeys(("forwards", "slots", "kv_reads", "compactions", "replays", "captures",
                                     "regrows"), 0)
        self.reserve = 0
        if self.static:  # slots the buffers hold past the prompt: the token budget and every crop at its largest
            self.reserve = cfg.max_new_tokens + min(cfg.max_crops, cfg.max_images - 1) * (crop_tokens(policy) + 16) + 32

    def _count(self, sc: SharedCache) -> None:
        for k in self.counts:
            self.counts[k] += getattr(sc, k, 0)

    def _cache(self, batch: int) -> SharedCache:
        if self.static:
            return StaticSharedCache(self.policy, batch, self.reserve, self.cfg.cuda_graphs, self.clock)
        return SharedCache(self.policy, batch)

    def _choose(self, rows: list[Episode], logits: torch.Tensor) -> list[Feed | None]:
        if self.hook is not None:
            self.hook([r.index for r in rows], logits)
        with self.clock.part("sampling"):
            toks, lps = choose(logits, [r.forced() for r in rows], self.cfg.effective_temperature, self.cfg.top_p,
                               self.ban, self.gen)
        with self.clock.part("environment"):
            return [r.push(t, lp) for r, t, lp in zip(rows, toks, lps)]

    def _append(self, sc: SharedCache, feeds: list[Feed | None]) -> torch.Tensor:
        """One step: decode, or (some row inserting a crop or a note) a crop-prefill step."""
        pvs = [f.pixel_values for f in feeds if f is not None and f.pixel_values is not None]
        wide = any(f is not None and len(f.ids) > 1 for f in feeds)
        with self.clock.part("crop_prefill" if wide else "decode", vision="vision_crops", crops=len(pvs)):
            return sc.append([f.ids if f is not None else [] for f in feeds],
                             [f.grids if f is not None else [] for f in feeds], torch.cat(pvs) if pvs else None)

    def batched(self, rows: list[Episode]) -> None:
        policy, cfg = self.policy, self.cfg
        # the G copies of a sample share their prompt: prefill each prompt once, then repeat its cache rows
        groups = sorted({r.traj.meta["group"] for r in rows})
        first = {g: next(r for r in rows if r.traj.meta["group"] == g) for g in groups}
        prompts = [first[g].traj for g in groups]
        sc = self._cache(len(prompts))
        with self.clock.part("environment"):
            pv, _ = policy.encode_images([im for t in prompts for im in t.model_images()])
        with self.clock.part("prefill_main", vision="vision_main"):
            logits = sc.append([t.input_ids() for t in prompts], [t.grids() for t in prompts], pv)
        where = [groups.index(r.traj.meta["group"]) for r in rows]
        with self.clock.part("cache_upkeep"):
            sc.select(where)
        logits = logits[torch.as_tensor(where, device=logits.device)]
        active = list(rows)  # rows in cache order; finished ones too when drop_finished is False
        while True:
            live = [i for i, r in enumerate(active) if r.stop is None]
            if len(live) < len(active):
                logits = logits[torch.as_tensor(live, device=logits.device)]
            feeds: list[Feed | None] = [None] * len(active)
            for i, f in zip(live, self._choose([active[i] for i in live], logits)):
                feeds[i] = f
            self.finished(sum(active[i].stop is not None for i in live))
            if all(r.stop is not None for r in active):
                break
            with self.clock.part("cache_upkeep"):
                if cfg.drop_finished and any(r.stop is not None for r in active):
                    keep = [i for i, r in enumerate(active) if r.stop is None]
                    sc.select(keep)
                    active, feeds = [active[i] for i in keep], [feeds[i] for i in keep]
                if cfg.drop_finished:
                    sc.maybe_compact(cfg.compact_holes)
            logits = self._append(sc, feeds)
        self._count(sc)

    def reference(self, row: Episode) -> None:
        """The official loop: whole-context prefill (all images re-encoded) for every segment."""
        policy = self.policy
        while True:
            traj = row.traj
            with self.clock.part("environment"):
                pv, _ = policy.encode_images(traj.model_images())
            sc = SharedCache(policy, 1)
            with self.clock.part("prefill_main", vision="vision_main"):
                logits = sc.append([traj.input_ids()], [traj.grids()], pv)
            while True:
                (feed,) = self._choose([row], logits)
                if feed is None:
                    self.finished(1)
                    self._count(sc)
                    return
                if len(feed.ids) > 1:  # a crop or a note: the official loop re-renders everything
                    break
                logits = self._append(sc, [feed])
            self._count(sc)


def _scripts(policy: "Policy", scripts, n: int, G: int) -> list[list[int]]:
    """Forced token ids for each of the n*G rows."""
    if scripts is None:
        return [[] for _ in range(n * G)]
    scripts = list(scripts)
    vision = policy.vision_token_ids
    if len(scripts) not in (n, n * G):
        raise ValueError(f"scripts must hold one entry per sample ({n}) or per row ({n * G}), got {len(scripts)}")
    out = []
    for s in scripts:
        if s is None:
            ids = []
        elif isinstance(s, str):
            ids = policy.encode(s)
        elif all(isinstance(x, str) for x in s):
            ids = [i for part in s for i in policy.encode(part)]
        elif all(isinstance(x, int) for x in s):
            ids = list(s)
        else:
            raise ValueError("a script is a str, a list of str or a list of token ids")
        if vision & set(ids):
            raise ValueError("a script may not contain vision tokens (<|image_pad|>, <|vision_start|>, <image>, ...): "
                             "images enter a trajectory only through crop calls")
        out.append(ids)
    return out if len(out) == n * G else [ids for ids in out for _ in range(G)]
