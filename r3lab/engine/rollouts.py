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
from .cache import Feed, LockStep, SharedCache, recurrent
from .config import RolloutConfig
from .environment import BoxFn, Episode, IdsFn, ImageFn, Script
from .graphs import use_graphs
from .host import Link
from .pool import reserve
from .sampling import Forced, banned_ids, brace_table, choose
from .static_cache import StaticSharedCache
from .timing import Clock

if TYPE_CHECKING:
    from ..model.policy import Policy


def rollout(
    policy: "Policy",
    samples: "Sample | Sequence[Sample]",
    config: RolloutConfig | None = None,
    *,
    group_size: int | None = None,
    scripts: Sequence[Script] | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    logits_hook: Callable[[list[int], torch.Tensor], None] | None = None,
    stats: dict | None = None,
    crop_boxes: BoxFn | None = None,
    crop_images: ImageFn | None = None,
    crop_ids: IdsFn | None = None,
) -> list[Trajectory]:
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
    attended over, compactions; with a static cache graph replays, captures, buffer growths and pools allocated),
    the cache kind, `graphs` (one line: "on", "off", or "broken: <why>" when a capture failed under "auto" and the
    rollout decoded eagerly), `pool` (the static buffers: rows, slots, MiB, the graphs' MiB, capture seconds),
    `transfers` (host <-> device copies: fetches, sends), `steps` (the steps after the first token and their wall
    seconds, each step's whole work: forward or replay, sampling, the copy back, the environment, upkeep; no
    synchronisation added), model tokens and seconds; with `config.timing` also `timing`, the cost by part
    (`r3lab.engine.timing`).
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
        warnings.warn(
            f"{type(policy.model).__name__} has linear-attention layers whose recurrent state a lock-step KV "
            "cache with holes cannot hold (holes would decay it): rolling out one trajectory at a time "
            "instead, its cache and state kept across crops (exact; no re-prefill). Pass batch_rows=1, "
            "cache='dynamic' to silence this.",
            stacklevel=2,
        )
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
            traj.meta.update(
                group=g,
                sample_id=s.sample_id,
                temperature=cfg.effective_temperature,
                top_p=cfg.top_p,
                mode=cfg.mode,
                row=i,
            )
            row = Episode(policy, traj, cfg, per_row[i], i, braces)
            if crop_boxes is not None:
                row.box_for = partial(crop_boxes, s)
            if crop_images is not None:
                row.image_for = partial(crop_images, s)
            if crop_ids is not None:
                row.ids_for = partial(crop_ids, s)
            rows.append(row)

    per_chunk = max(1, cfg.batch_rows // G) * G if G <= cfg.batch_rows else cfg.batch_rows
    check_budget(
        policy,
        [r.traj for r in rows[::G]],
        cfg.max_new_tokens,  # before any work: positions, memory
        1 if cfg.mode == "reference" else max(1, per_chunk // G),
        torch.device(policy.device).type,
    )
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
                    engine.batched(rows[a : a + per_chunk])
    finally:
        model.train(was_training)
        inner = getattr(base_model(model), "model", None)
        if hasattr(inner, "rope_deltas"):
            inner.rope_deltas = None
        clock.close()
        bar.close()
    if stats is not None:
        t_first, t_last, n = engine.loop
        stats.update(
            engine.counts,
            cache="static" if engine.static else "dynamic",
            graphs=engine.graphs_line(),
            transfers={"fetches": engine.link.fetches, "sends": engine.link.sends},
            steps={"steps": max(0, n - 1), "seconds": round((t_last or 0) - (t_first or 0), 6)},
            model_tokens=sum(r.n_new for r in rows),
            seconds=time.perf_counter() - t0,
        )
        if engine.pool is not None:
            p = engine.pool
            stats["pool"] = dict(
                rows=p.rows,
                slots=p.slots,
                mib=round(p.bytes / 2**20, 3),
                graph_mib=round(p.graph_bytes / 2**20, 3),
                capture_s=round(p.capture_s, 4),
                steps=len(p.steps),
                broken=p.broken,
            )
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
        self.clock, self.link = clock, Link(policy.device)
        self.static = cfg.mode == "batched" and cfg.cache == "static"
        self.graphs = self.static and use_graphs(cfg.cuda_graphs, policy.device)
        self.counts = dict.fromkeys(
            (
                "forwards",
                "slots",
                "kv_reads",
                "compactions",
                "replays",
                "captures",
                "regrows",
                "pools",
                "decodes",
                "window_slots",
            ),
            0,
        )
        self.loop = [None, None, 0]  # the steps' wall time: after the first copy back, after the last, how many
        self.reserve = reserve(policy, cfg) if self.static else 0  # slots the buffers hold past the prompts
        self.pool = None

    def graphs_line(self) -> str:
        if self.pool is not None and self.pool.broken and self.graphs:
            return f"broken: {self.pool.broken}"
        return "on" if self.graphs else "off"

    def _count(self, sc: LockStep) -> None:
        for k in self.counts:
            self.counts[k] += getattr(sc, k, 0)
        self.pool = getattr(sc, "pool", self.pool)

    def _choose(
        self, rows: list[Episode], logits: torch.Tensor, forced: torch.Tensor | None = None
    ) -> tuple[list[Feed | None], torch.Tensor]:
        """Each row's next token, chosen on the device, fetched in one copy and pushed to its row; returns what
        each row appends next, and the chosen ids (still on the device)."""
        if self.hook is not None:
            self.hook([r.index for r in rows], logits)
        with self.clock.part("sampling"):
            if forced is None and any(r.forced() is not None for r in rows):  # the reference loop's scripts
                forced = self.link.send(torch.tensor([-1 if r.forced() is None else r.forced() for r in rows]))[0]
            pick, lp = choose(logits, forced, self.cfg.effective_temperature, self.cfg.top_p, self.ban, self.gen)
            toks, lps = self.link.fetch(pick, lp)
        now = time.perf_counter()  # each step ends with its copy back: between two, exactly one step's work
        self.loop = [self.loop[0] or now, now, self.loop[2] + 1]
        with self.clock.part("environment"):
            return [r.push(t, lp) for r, t, lp in zip(rows, toks, lps)], pick

    def _append(self, sc: LockStep, feeds: list[Feed | None], ids: torch.Tensor | None = None) -> torch.Tensor:
        """One step: decode, or (some row inserting a crop or a note) a crop-prefill step."""
        pvs = [f.pixel_values for f in feeds if f is not None and f.pixel_values is not None]
        wide = any(f is not None and len(f.ids) > 1 for f in feeds)
        with self.clock.part("crop_prefill" if wide else "decode", vision="vision_crops", crops=len(pvs)):
            return sc.append(
                [f.ids if f is not None else [] for f in feeds],
                [f.grids if f is not None else [] for f in feeds],
                torch.cat(pvs) if pvs else None,
                ids=ids,
            )

    def batched(self, rows: list[Episode]) -> None:
        policy, cfg, link = self.policy, self.cfg, self.link
        # the G copies of a sample share their prompt: prefill each prompt once, then repeat its cache rows
        groups = sorted({r.traj.meta["group"] for r in rows})
        first = {g: next(r for r in rows if r.traj.meta["group"] == g) for g in groups}
        prompts = [first[g].traj for g in groups]
        forced = Forced.of([list(r.script) for r in rows], link)
        sc = SharedCache(policy, len(prompts), link)
        with self.clock.part("environment"):
            pv, _ = policy.encode_images([im for t in prompts for im in t.model_images()])
        with self.clock.part("prefill_main", vision="vision_main"):
            logits = sc.append([t.input_ids() for t in prompts], [t.grids() for t in prompts], pv)
        where = [groups.index(r.traj.meta["group"]) for r in rows]
        with self.clock.part("cache_upkeep"):
            idx = link.index(where)
            sc.select(where, idx)
        logits = logits[idx]
        if self.static:
            sc = StaticSharedCache.from_prefill(sc, self.reserve, cfg.cuda_graphs, self.clock)
        active, live_idx = list(rows), None  # rows in cache order; finished ones too when drop_finished is False
        while True:
            live = [i for i, r in enumerate(active) if r.stop is None]
            now = forced.next() if forced is not None else None
            if len(live) < len(active):  # finished rows riding along (drop_finished=False)
                if live_idx is None or len(live_idx) != len(live):
                    live_idx = link.index(live)
                logits = logits[live_idx]
                now = None if now is None else now[live_idx]
            feeds: list[Feed | None] = [None] * len(active)
            chosen, pick = self._choose([active[i] for i in live], logits, now)
            if forced is not None:
                forced.step()
            for i, f in zip(live, chosen):
                feeds[i] = f
            self.finished(sum(active[i].stop is not None for i in live))
            if all(r.stop is not None for r in active):
                break
            ids = pick if len(live) == len(active) else None  # the one-token rows' ids, on the device
            with self.clock.part("cache_upkeep"):
                if cfg.drop_finished and any(r.stop is not None for r in active):
                    keep = [i for i, r in enumerate(active) if r.stop is None]
                    idx = link.index(keep)
                    sc.select(keep, idx)
                    if forced is not None:
                        forced.keep(idx)
                    ids = pick[idx]
                    active, feeds = [active[i] for i in keep], [feeds[i] for i in keep]
                if cfg.drop_finished:
                    sc.maybe_compact(cfg.compact_holes)
            logits = self._append(sc, feeds, ids)
        self._count(sc)

    def reference(self, row: Episode) -> None:
        """The official loop: whole-context prefill (all images re-encoded) for every segment."""
        policy = self.policy
        while True:
            traj = row.traj
            with self.clock.part("environment"):
                pv, _ = policy.encode_images(traj.model_images())
            sc = SharedCache(policy, 1, self.link)
            with self.clock.part("prefill_main", vision="vision_main"):
                logits = sc.append([traj.input_ids()], [traj.grids()], pv)
            while True:
                (feed,), pick = self._choose([row], logits)
                if feed is None:
                    self.finished(1)
                    self._count(sc)
                    return
                if len(feed.ids) > 1:  # a crop or a note: the official loop re-renders everything
                    break
                logits = self._append(sc, [feed], pick)
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
            raise ValueError(
                "a script may not contain vision tokens (<|image_pad|>, <|vision_start|>, <image>, ...): "
                "images enter a trajectory only through crop calls"
            )
        out.append(ids)
    return out if len(out) == n * G else [ids for ids in out for _ in range(G)]
