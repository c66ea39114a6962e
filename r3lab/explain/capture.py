"""Attention capture: what the text decoder looked at in each image, at SDPA cost.

`capture_attention` registers an attention function through transformers' `AttentionInterface` (with `sdpa_mask`
registered under the same name in `AttentionMaskInterface`, otherwise the mask silently becomes None). Every layer's
output still comes from SDPA; for the selected layers it also computes softmax(q·kᵀ) for the chosen query rows only and
keeps their image-token columns, detached, in fp32, on CPU. The vision tower keeps its own implementation (only the
text sub-config switches). The design follows TransformerLens' `hooks()` context (removal in `finally`) and the capture
measured by benchmarks/attention.py (same numbers as eager, a fraction of the memory). What a capture yields,
`AttentionMaps` (grid / pixel geometry, aggregation), lives in `r3lab.explain.maps`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from ..core.batch import collate, model_inputs
from ..core.settings import short
from ..model.adapters import base_model
from .maps import AttentionMaps, fold_tiles
from .selection import (
    CaptureConfig,
    attention_modules,
    full_attention_only,
    image_spans,
    resolve_layers,
    resolve_queries,
    text_config,
)

if TYPE_CHECKING:
    from ..core.trajectory import Trajectory
    from ..model.policy import Policy

IMPL = "r3lab_capture"  # the name registered in AttentionInterface / AttentionMaskInterface
_ACTIVE: list["Capture"] = []  # captures currently inside their `with` block
_CHUNK = 1 << 24  # elements of one score block (heads x query rows x keys) computed at a time


class Capture:
    """The handle a `capture_attention` block yields: run forwards, then read `.maps`."""

    def __init__(self, model, config: CaptureConfig, policy: "Policy | None" = None):
        self.model, self.config, self.policy = model, config, policy
        tc = text_config(model)
        self.n_layers, self.n_heads = int(tc.num_hidden_layers), int(tc.num_attention_heads)
        self.layers = full_attention_only(tc, config.layers, resolve_layers(config.layers, self.n_layers))
        if not self.layers:
            raise ValueError(f"no layer selected out of {self.n_layers}: check the `layers` argument")
        heads = list(range(self.n_heads)) if config.heads is None else [int(h) for h in config.heads]
        bad = [h for h in heads if not 0 <= h < self.n_heads]
        if bad or not heads:
            raise ValueError(f"heads {short(bad or heads)} out of range: the text decoder has {self.n_heads} heads")
        self.heads = heads
        self.image_id = int(model.config.image_token_id)
        vc = model.config.vision_config
        # SmolVLM / Idefics3: an image is tiles plus a global view, folded onto one cell grid (`_fold`)
        self.fold = policy is not None and policy.position_dims == 1
        if self.fold:
            if config.rollout:
                raise ValueError(
                    "rollout=True chains L x L matrices over single image tokens; a SmolVLM image is "
                    "tiles plus a global view, which attention rollout cannot fold: "
                    "use layers/heads means"
                )
            k = int(round(policy.rules.tile_tokens(policy) ** 0.5))
            self.merge, self.patch = 1, policy.patch_size // k
        else:
            self.merge, self.patch = int(vc.spatial_merge_size), int(vc.patch_size)
        self._modules = attention_modules(model)
        self._pending: dict | None = None
        self._trajs: list | None = None
        self.records: list[list[AttentionMaps]] = []  # one list (per batch row) per captured forward

    # -- the forward ---------------------------------------------------------------------------
    def forward(self, trajectories: "Trajectory | Sequence[Trajectory]", **kw):
        """Teacher-forced forward over finished trajectories; `queries="model"` means model_text tokens."""
        if self.policy is None:
            raise ValueError(
                "Capture.forward needs a Policy: call capture_attention(policy, ...) instead of a bare model"
            )
        trajs = [trajectories] if not isinstance(trajectories, (list, tuple)) else list(trajectories)
        batch = collate(trajs, self.policy)
        self._trajs = trajs
        saved = self.config
        if isinstance(saved.queries, str) and saved.queries == "model":
            masks = [t.loss_mask() for t in trajs]
            left = iter(masks)  # one mask per row, in order
            self.config = replace(saved, queries=lambda ids: next(left))
        try:
            with torch.no_grad():
                return self.model(**model_inputs(batch), use_cache=False, **kw)
        finally:
            self.config, self._trajs = saved, None

    def _pre_hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            raise ValueError("capture_attention needs input_ids (it finds the image tokens there), not inputs_embeds")
        pkv = kwargs.get("past_key_values")
        if pkv is not None and hasattr(pkv, "get_seq_length") and pkv.get_seq_length() > 0:
            raise ValueError(
                "capture_attention records one teacher-forced forward over the whole sequence; "
                "call the model without a filled past_key_values cache inside the block"
            )
        mask = kwargs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask
        if self.fold:
            return self._pre_fold(ids, mask)
        grids = kwargs.get("image_grid_thw")
        grids = [] if grids is None else [tuple(int(v) for v in g) for g in grids.tolist()]
        rows, g = [], 0
        for b in range(ids.shape[0]):
            real = mask[b].bool()
            spans = image_spans(ids[b], self.image_id)
            q = resolve_queries(self.config.queries, ids[b], real, self.image_id)
            row_grids = grids[g : g + len(spans)]
            g += len(spans)
            if len(row_grids) != len(spans):
                raise ValueError(f"row {b} has {len(spans)} image-token runs but image_grid_thw has too few grids")
            for (s, e), (t, h, w) in zip(spans, row_grids):
                if e - s != t * h * w // self.merge**2:
                    raise ValueError(
                        f"an image run of {e - s} tokens does not match grid {(t, h, w)} / merge {self.merge}"
                    )
            img = torch.cat([torch.arange(s, e) for s, e in spans]) if spans else torch.zeros(0, dtype=torch.long)
            start = int(torch.nonzero(real)[0]) if real.any() else 0
            rows.append(dict(q=q.cpu(), img=img, spans=spans, grids=row_grids, start=start, real=real.cpu(), out={}))
        self._pending = dict(rows=rows)

    def _pre_fold(self, ids, mask):
        """SmolVLM: each image's token columns and grid come from the trajectory's pieces."""
        if self._trajs is None or len(self._trajs) != ids.shape[0]:
            raise ValueError(
                "capture_attention on a SmolVLM model reads each image's tiles from its trajectory: call "
                "cap.forward(trajectories) inside the block"
            )
        rows = []
        for b, traj in enumerate(self._trajs):
            real = mask[b].bool()
            start = int(torch.nonzero(real)[0]) if real.any() else 0
            cols, spans, grids, at = [], [], [], start
            for p in traj.pieces:
                if p.kind == "image":
                    mine = [at + i for i, t in enumerate(p.ids) if t == self.image_id]
                    spans.append((len(cols), len(cols) + len(mine)))
                    cols += mine
                    grids.append(tuple(p.info.grid_thw))
                at += len(p.ids)
            q = resolve_queries(self.config.queries, ids[b], real, self.image_id)
            rows.append(
                dict(
                    q=q.cpu(),
                    img=torch.tensor(cols, dtype=torch.long),
                    spans=spans,
                    grids=grids,
                    start=start,
                    real=real.cpu(),
                    out={},
                    folded=True,
                )
            )
        self._pending = dict(rows=rows)

    def _post_hook(self, module, args, kwargs, output):
        pending, self._pending = self._pending, None
        if pending is None:
            return
        rows = pending["rows"]
        got = sorted(rows[0]["out"]) if rows else []
        if not got:
            impl = text_config(self.model)._attn_implementation
            raise RuntimeError(
                f"capture_attention captured nothing from layers {self.layers}: the text decoder ran with "
                f"attn_implementation={impl!r} instead of {IMPL!r}, so its attention never reached the capture "
                "function (a fused/flash kernel, or a model class that cannot switch attention at run time). Fix: "
                "load the model with attn_implementation='sdpa' (or 'eager') and do not change it inside the block."
            )
        maps = []
        trajs = self._trajs or [None] * len(rows)
        for r, traj in zip(rows, trajs):
            out = r["out"]
            missing = [i for i in self.layers if i not in out]
            if missing:
                raise RuntimeError(
                    f"layers {missing} ran without reaching the capture function; "
                    "check that every selected layer uses the text attention module"
                )
            start = r["start"]
            full = torch.stack([out[i]["full"] for i in self.layers]) if self.config.rollout else None
            weights, img, spans, grids = (
                torch.stack([out[i]["w"] for i in self.layers]),
                r["img"],
                _local_spans(r["spans"]),
                r["grids"],
            )
            if r.get("folded"):
                weights, img, spans, grids = fold_tiles(self.policy, weights, r["img"], r["spans"], r["grids"])
            m = AttentionMaps(
                weights=weights,
                sink=torch.stack([out[i]["sink"] for i in self.layers]),
                query_pos=r["q"] - start,
                image_pos=img - start,
                spans=spans,
                grids=grids,
                merge=self.merge,
                patch=self.patch,
                layers=list(self.layers),
                heads=list(self.heads),
                full=full,
            )
            if traj is not None:
                m.attach(traj)
            maps.append(m)
        self.records.append(maps)

    def _record(self, module, query, key, mask, scaling):
        layer = self._modules.get(id(module))
        if layer is None or layer not in self.layers or self._pending is None:
            return
        groups = query.shape[1] // key.shape[1]
        Lq, Lk = query.shape[2], key.shape[2]
        scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
        heads = torch.tensor(self.heads, device=query.device)
        for b, r in enumerate(self._pending["rows"]):
            qi = r["q"].to(query.device)
            allowed = _allowed(mask, b, Lq, Lk, query.device)
            w = _softmax_rows(query[b, heads], key[b, heads // groups], qi, allowed, scaling)  # (h, Q, Lk)
            img = r["img"].to(query.device)
            rec = {"w": w[..., img].detach().float().cpu(), "sink": w[..., r["start"]].detach().float().cpu()}
            if self.config.rollout:
                allq = torch.arange(Lq, device=query.device)
                full = _softmax_rows(query[b, heads], key[b, heads // groups], allq, allowed, scaling).mean(0)
                full = torch.nan_to_num(full)[r["start"] :, r["start"] :]
                rec["full"] = full.detach().float().cpu()
            r["out"][layer] = rec

    @property
    def maps(self) -> "AttentionMaps":
        """The maps of the last captured forward (batch row 0); `records` has every row."""
        if not self.records:
            raise RuntimeError("no forward ran inside capture_attention: call cap.forward(trajectory) or the model")
        return self.records[-1][0]


def _local_spans(spans):
    out, n = [], 0
    for s, e in spans:
        out.append((n, n + e - s))
        n += e - s
    return out


def _allowed(mask, b: int, Lq: int, Lk: int, device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function of query rows -> additive fp32 mask (rows, Lk), from whatever mask SDPA received."""
    if mask is None:  # sdpa_mask skipped a plain causal mask (is_causal); rebuild it
        cols = torch.arange(Lk, device=device)
        return lambda qi: torch.where(cols[None, :] <= (qi + Lk - Lq)[:, None], 0.0, float("-inf"))
    m = mask[min(b, mask.shape[0] - 1), 0]
    if m.dtype == torch.bool:
        return lambda qi: torch.where(m[qi], 0.0, float("-inf"))
    return lambda qi: m[qi].float()


def _softmax_rows(q, k, qi, allowed, scaling) -> torch.Tensor:
    """softmax(q[:, qi] kᵀ * scaling + mask) in fp32, computed in row blocks to bound memory."""
    h, Lk = q.shape[0], k.shape[1]
    step = max(1, _CHUNK // max(1, h * Lk))
    kf = k.float()
    out = []
    for s in range(0, len(qi), step):
        rows = qi[s : s + step]
        scores = q[:, rows].float() @ kf.transpose(-1, -2) * scaling + allowed(rows)[None]
        out.append(torch.softmax(scores, dim=-1))
    return torch.cat(out, dim=1) if out else q.new_zeros(h, 0, Lk, dtype=torch.float32)


def _capture_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """SDPA for the output; for captured layers, also the selected rows of the softmax."""
    out = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    with torch.no_grad():
        for cap in _ACTIVE:
            if id(module) in cap._modules:
                cap._record(module, query, key, attention_mask, scaling)
    return out


@contextmanager
def capture_attention(
    model_or_policy, layers=(-1,), heads=None, queries="all", rollout: bool = False, config: CaptureConfig | None = None
):
    """Keep selected layers' attention from query tokens to image tokens during one forward.

    >>> with capture_attention(policy, layers=[-1], queries="model") as cap:
    ...     cap.forward(trajectory)            # or policy.model(**batch)
    >>> maps = cap.maps                          # AttentionMaps

    On exit (also when the body raises) the hooks are removed, the text decoder's attention
    implementation is restored and the registrations are withdrawn when no other capture runs.
    """
    policy = model_or_policy if hasattr(model_or_policy, "model") and hasattr(model_or_policy, "tokenizer") else None
    # under LoRA adapters: the transformers model they live in (a forward through the wrapper runs it)
    model = base_model(policy.model if policy is not None else model_or_policy)
    cfg = config or CaptureConfig(layers=layers, heads=heads, queries=queries, rollout=rollout)
    cap = Capture(model, cfg, policy)
    if not cap._modules:
        raise ValueError(
            f"{type(model).__name__} has no text attention modules with a layer_idx: "
            "capture_attention expects a Qwen2-VL / Qwen2.5-VL model"
        )
    tc = text_config(model)
    old = tc._attn_implementation
    key = next((k for k in getattr(model.config, "sub_configs", {}) if getattr(model.config, k, None) is tc), None)
    handles = []
    try:
        if not _ACTIVE:
            AttentionInterface.register(IMPL, _capture_attention_forward)
            AttentionMaskInterface.register(IMPL, sdpa_mask)
        _ACTIVE.append(cap)
        model.set_attn_implementation({key: IMPL} if key else IMPL)
        handles.append(model.register_forward_pre_hook(cap._pre_hook, with_kwargs=True))
        handles.append(model.register_forward_hook(cap._post_hook, with_kwargs=True))
        yield cap
    finally:
        for h in handles:
            h.remove()
        if tc._attn_implementation != old:
            model.set_attn_implementation({key: old} if key else old)
        if cap in _ACTIVE:
            _ACTIVE.remove(cap)
        if not _ACTIVE:
            AttentionInterface._global_mapping.pop(IMPL, None)
            AttentionMaskInterface._global_mapping.pop(IMPL, None)


def attention_maps(
    policy: "Policy", trajectory: "Trajectory", layers=(-1,), heads=None, queries="model", rollout: bool = False
) -> "AttentionMaps":
    """One teacher-forced forward over `trajectory` with capture on; returns its AttentionMaps."""
    with capture_attention(policy, layers=layers, heads=heads, queries=queries, rollout=rollout) as cap:
        cap.forward(trajectory)
    return cap.maps
