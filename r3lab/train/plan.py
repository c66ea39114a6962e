"""Memory of a training run before it starts: weights, gradients, optimizer state, activations, KV cache.

`plan(PlanConfig(policy="qwen2.5-vl-3b", gpu_memory=24))` counts the parameters of the real model built on the
meta device (no weights anywhere; a folder's config.json or a published configuration, `r3lab.model.real`),
then adds up, for SFT and R-GRPO, full fine-tuning and LoRA, with and without gradient checkpointing:

- weights: parameters x bytes of the dtype; LoRA adapters in fp32 (peft up-casts them);
- gradients and AdamW's two moments: the trainable parameters in their own dtype (torch keeps the moments
  in the parameter dtype; r3lab keeps no fp32 master copy);
- activations saved for backward, per token and decoder layer, from what the layers hold on to
  (Llama/Qwen layers: two RMSNorms that save their fp32 input, q/k/v/out for SDPA's memory-efficient
  kernels, o_proj's input, a gated MLP's four I-wide tensors); with checkpointing, each layer's input plus
  one layer recomputed; the vision tower only when it trains; lm_head only at the supervised positions
  (`r3lab.engine.scoring`);
- R-GRPO's rollout: a KV cache per row (2 x full-attention layers x KV heads x head_dim), holes included;
  a frozen reference copy when beta > 0 and the whole model trains (LoRA's reference is its base: free);
- with the static cache (`cache="static"`, the default) that KV stays allocated between rollouts, through the
  update, as the engine's pool (`r3lab.engine.pool`), with its logits buffer and what the captured decode steps
  hold (one step's working memory at the largest batch bucket: its logits in the dtype and in fp32, a few rows of
  layer activations): `pool`, counted in the update's peak and in the largest group that fits.

Stage defaults (which groups train) come from SFTConfig / RGRPOConfig. `benchmarks/plan_memory.py` checks the
numbers against a measured peak on this CPU (benchmarks/results/plan_cpu.json).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.settings import check_ranges, nested, read_nested, short
from ..model.adapters import TARGETS, LoRAConfig, target_regex
from .config import RGRPOConfig, SFTConfig

GIB = 1024**3
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass
class PlanConfig:
    """What `r3lab plan` sizes: a model, a card and one trajectory's shape."""

    policy: str = "qwen2.5-vl-3b"
    """checkpoint folder (its config.json) or a published name: qwen2.5-vl-3b, qwen3-vl-2b, smolvlm-256m"""
    gpu_memory: float = 24.0
    """GiB of the card"""
    dtype: str = "bfloat16"
    """dtype of weights, gradients and optimizer moments: bfloat16, float16 or float32"""
    text_tokens: int = 384
    """text tokens of one trajectory (prompt, model text, tool turns)"""
    image_tokens: int = 1024
    """image tokens the language model reads per trajectory (main image and crops)"""
    new_tokens: int = 256
    """model-written tokens per trajectory (the supervised ones)"""
    group_size: int = 8
    """R-GRPO: rollouts per prompt when no larger group is asked for"""
    holes: float = 0.25
    """R-GRPO: share of the lock-step KV cache that is padding (compaction bounds it)"""
    beta: float = 0.0
    """R-GRPO KL weight: > 0 keeps a frozen reference (a full copy unless LoRA)"""
    cache: str = "static"
    """R-GRPO rollouts' KV cache: "static" keeps its buffers and graphs through the update, "dynamic" frees them after
    each rollout"""
    lora: LoRAConfig = nested(LoRAConfig, "lora-", r=16)
    """the adapters the LoRA rows use"""
    reserve: float = 1.5
    """GiB kept free: CUDA context, allocator fragmentation, kernel workspaces"""

    def __post_init__(self):
        read_nested(self)
        if self.cache not in ("static", "dynamic"):
            raise ValueError(f"PlanConfig.cache = {short(self.cache)}: use 'static' or 'dynamic'")
        if self.dtype not in BYTES:
            raise ValueError(f"PlanConfig.dtype = {short(self.dtype)}: use one of {', '.join(BYTES)}")
        check_ranges(
            self,
            ints=dict(text_tokens=(0, None), image_tokens=(0, None), new_tokens=(0, None), group_size=(2, None)),
            floats=dict(gpu_memory=(0, None), holes=(0, 1), beta=(0, None), reserve=(0, None)),
            open_low=("gpu_memory",),
            open_high=("holes",),
        )
        if self.new_tokens > self.text_tokens:
            raise ValueError(f"PlanConfig.new_tokens ({self.new_tokens}) is part of text_tokens ({self.text_tokens})")
        if not self.lora.enabled:
            raise ValueError("PlanConfig.lora.r must be > 0: it sizes the LoRA rows (full rows are always planned)")

    @property
    def tokens(self) -> int:
        return self.text_tokens + self.image_tokens


@dataclass
class Shape:
    """What the arithmetic needs of a model: parameter counts per group and the layer sizes."""

    name: str
    model_type: str
    params: dict  # group -> parameters (vision / merger / lm), tied weights once
    lora_params: dict  # part -> LoRA parameters per unit rank (r x (in + out) / r)
    layers: int
    attention_layers: int  # layers with a KV cache (Qwen3.5's linear-attention layers have none)
    hidden: int
    kv_dim: int  # KV heads x head_dim
    q_dim: int  # query heads x head_dim
    intermediate: int
    vocab: int
    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    vision_gated: bool  # a gate/up/down vision MLP (Qwen2.5-VL) rather than fc1/fc2
    patches_per_token: int  # vision patches per language-model image token (merge^2 or Idefics3's scale^2)

    @property
    def total(self) -> int:
        return sum(self.params.values())


def model_shape(policy: str) -> Shape:
    """Count a model's parameters on the meta device (a checkpoint folder or a published name)."""
    import torch
    from transformers import AutoConfig

    from ..model.folder import LATEST, adapter_base
    from ..model.real import NAMES, build_real, real_config
    from ..model.weights import check_config_sizes, read_json
    from .optim import group_of  # torch: imported when a plan is made, not for `r3lab plan --help`

    folder = Path(policy)
    if (folder / LATEST).is_file() and not (folder / "config.json").is_file():  # a training run: its latest step
        folder = folder / (folder / LATEST).read_text().strip()
    folder = adapter_base(folder) or folder if folder.is_dir() else folder  # a LoRA checkpoint: its base's shape
    if policy in NAMES:
        cfg, name = real_config(policy), policy
    elif (folder / "config.json").is_file():  # its sizes bounded first: the meta build below makes every layer
        check_config_sizes(read_json(folder / "config.json"), folder / "config.json")
        cfg, name = AutoConfig.from_pretrained(folder, local_files_only=True), str(policy)
    else:
        raise ValueError(
            f"--policy {short(policy)} is neither a checkpoint folder (with config.json) nor a published "
            f"configuration ({', '.join(NAMES)})"
        )
    model = build_real(cfg, device="meta")
    params: dict[str, int] = {}
    for n, p in model.named_parameters():
        params[group_of(n)] = params.get(group_of(n), 0) + p.numel()
    mt = cfg.model_type
    lora = {part: 0 for part in ("lm", "vision", "merger")}
    if mt in TARGETS:
        for part in lora:
            pat = re.compile(target_regex(mt, (part,)))
            lora[part] = sum(
                m.in_features + m.out_features
                for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and pat.fullmatch(n)
            )
    tc, vc = cfg.get_text_config(), cfg.vision_config
    heads, kvh = tc.num_attention_heads, tc.num_key_value_heads
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // heads
    kinds = list(getattr(tc, "layer_types", None) or [])
    vision_layers = getattr(vc, "depth", None) or vc.num_hidden_layers
    merge = getattr(vc, "spatial_merge_size", None)
    del model
    return Shape(
        name=name,
        model_type=mt,
        params=params,
        lora_params=lora,
        layers=tc.num_hidden_layers,
        attention_layers=sum(k != "linear_attention" for k in kinds) if kinds else tc.num_hidden_layers,
        hidden=tc.hidden_size,
        kv_dim=kvh * head_dim,
        q_dim=heads * head_dim,
        intermediate=tc.intermediate_size,
        vocab=tc.vocab_size,
        vision_hidden=vc.hidden_size,
        vision_intermediate=vc.intermediate_size,
        vision_layers=vision_layers,
        vision_gated=mt in ("qwen2_5_vl",),
        patches_per_token=(merge * merge) if merge else int(getattr(cfg, "scale_factor", 1)) ** 2,
    )


# -- the arithmetic ------------------------------------------------------------------------------------
def layer_bytes(s: Shape, bw: int, lora_r: int = 0) -> float:
    """Bytes one token leaves saved for backward in one decoder layer (see the module docstring).

    `lora_r` > 0: every linear layer carries an adapter; peft runs adapters in fp32 on a 16-bit base, so
    each adapted layer keeps an fp32 copy of its input (q, k, v, gate and up each their own) and its rank-r
    intermediate."""
    norms = 2 * (4 + 2 * bw) * s.hidden  # each RMSNorm: its fp32 input, the bf16 cast its weight multiplies, the output
    attention = bw * (2 * s.q_dim + 2 * s.kv_dim) + bw * s.q_dim  # q, k, v, out for SDPA; o_proj's input
    mlp = 4 * bw * s.intermediate  # gate, up, act(gate), act(gate) * up
    lora = 0.0
    if lora_r:
        inputs = 5 * s.hidden + s.q_dim + s.intermediate  # q, k, v, gate, up read h; o_proj q_dim; down_proj I
        lora = (4 if bw < 4 else 0) * inputs + 4 * 7 * lora_r
    return norms + attention + mlp + lora


def vision_layer_bytes(s: Shape, bw: int) -> float:
    """Bytes one patch leaves saved for backward in one vision block (norms, qkv, SDPA, proj, MLP)."""
    h, i = s.vision_hidden, s.vision_intermediate
    return 2 * (4 + bw) * h + bw * (3 * h + h + h) + bw * (4 if s.vision_gated else 2) * i


def activations(s: Shape, c: PlanConfig, bw: int, checkpointing: bool, vision_trains: bool, lora_r: int = 0) -> float:
    """Activation bytes of one trajectory's forward+backward (lm_head at the supervised tokens included)."""
    L = c.tokens
    per_layer = L * layer_bytes(s, bw, lora_r)
    lm = (L * s.hidden * bw * s.layers + per_layer) if checkpointing else per_layer * s.layers
    head = c.new_tokens * s.vocab * (12 + 2 * bw)  # logits (bf16 and fp32), log_softmax, their gradients
    vision = 0.0
    if vision_trains:
        P = c.image_tokens * s.patches_per_token
        per = P * vision_layer_bytes(s, bw)
        vision = (P * s.vision_hidden * bw * s.vision_layers + per) if checkpointing else per * s.vision_layers
    return lm + head + vision + L * s.hidden * bw  # + the image features scattered into the embeddings


def kv_bytes(s: Shape, c: PlanConfig, bw: int) -> float:
    """KV cache of one rollout row of `tokens`, holes included."""
    return 2 * s.attention_layers * s.kv_dim * bw * c.tokens / (1 - c.holes)


def pool_row_bytes(s: Shape, c: PlanConfig, bw: int) -> float:
    """What one row of the static cache's pool keeps between rollouts besides its KV: its row of the logits buffer
    (fp32) and of the captured steps' working memory (the step's logits in the dtype and in fp32, a few activations
    per layer width)."""
    return s.vocab * 4 + s.vocab * (bw + 4) + (4 * s.intermediate + 8 * s.hidden) * bw


def forward_bytes(s: Shape, c: PlanConfig) -> dict:
    """A plain forward without gradients (evaluation, a rollout's prefill): the weights, the full logits
    (B=1, every position) and what one layer holds at a time (its input and working set)."""
    bw = BYTES[c.dtype]
    L, P = c.tokens, c.image_tokens * s.patches_per_token
    working = max(L * layer_bytes(s, bw), P * vision_layer_bytes(s, bw))
    return dict(
        weights=s.total * bw,
        logits=L * s.vocab * bw,
        working=working,
        total=s.total * bw + L * s.vocab * bw + working + 2 * L * s.hidden * bw,
    )


def _stage(s: Shape, c: PlanConfig, stage: str, mode: str, checkpointing: bool) -> dict:
    bw = BYTES[c.dtype]
    defaults = SFTConfig() if stage == "SFT" else RGRPOConfig()
    frozen = {"vision": defaults.freeze_vision, "merger": defaults.freeze_merger, "lm": False}
    if mode == "full":
        trainable = sum(n for g, n in s.params.items() if not frozen[g])
        weights, grads, optim = s.total * bw, trainable * bw, 2 * trainable * bw
        vision_trains = not frozen["vision"]
        reference = s.total * bw if stage == "R-GRPO" and c.beta > 0 else 0.0
    else:
        n = c.lora.r * sum(s.lora_params[p] for p in c.lora.parts)
        trainable = n
        weights, grads, optim = s.total * bw + 4 * n, 4 * n, 8 * n
        vision_trains = "vision" in c.lora.parts
        reference = 0.0
    lora_r = c.lora.r if mode == "lora" and "lm" in c.lora.parts else 0
    act = activations(s, c, bw, checkpointing, vision_trains, lora_r)
    fixed = weights + grads + optim + reference
    budget = (c.gpu_memory - c.reserve) * GIB
    row = dict(
        stage=stage,
        mode=mode,
        checkpointing=checkpointing,
        trainable=trainable,
        weights=weights,
        grads=grads,
        optimizer=optim,
        reference=reference,
        activations=act,
    )
    if stage == "SFT":
        row.update(
            kv=0.0, pool=0.0, total=fixed + act, fits=max(0, int((budget - fixed) // act)) if budget > fixed else 0
        )
    else:
        kv = kv_bytes(s, c, bw)
        kept = kv + pool_row_bytes(s, c, bw) if c.cache == "static" else 0.0  # a row of the pool, kept throughout
        pool = c.group_size * kept
        # rollouts hold no gradients (zeroed to None after every step); the update runs one row at a time
        step = c.group_size * s.vocab * 8  # each decoding step's fp32 logits and log-probs for the group
        rollout = weights + optim + reference + c.group_size * max(kv, kept) + step
        by_rollout = (budget - weights - optim - reference) // (max(kv, kept) + s.vocab * 8)
        by_update = (budget - fixed - act) // kept if kept else by_rollout
        row.update(
            kv=kv,
            pool=pool,
            total=max(rollout, fixed + act + pool),
            fits=max(0, int(min(by_rollout, by_update))) if fixed + act <= budget else 0,
        )
    return row


def plan(config: PlanConfig | None = None, shape: Shape | None = None) -> "Plan":
    """The memory rows of SFT and R-GRPO (full / LoRA, checkpointing off / on) for `config.policy`."""
    c = config or PlanConfig()
    s = shape or model_shape(c.policy)
    rows = [
        _stage(s, c, stage, mode, ckpt)
        for stage in ("SFT", "R-GRPO")
        for mode in ("full", "lora")
        for ckpt in (False, True)
    ]
    return Plan(c, s, rows)


@dataclass
class Plan:
    config: PlanConfig
    shape: Shape
    rows: list

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "shape": asdict(self.shape), "rows": self.rows}

    def table(self) -> str:
        """The rows as text (GiB), with the largest SFT micro-batch and R-GRPO group that fit."""
        c, s = self.config, self.shape
        g = lambda b: f"{b / GIB:7.2f}"  # noqa: E731
        out = [
            f"{s.name} ({s.model_type}): {s.total / 1e9:.2f} B parameters "
            f"(lm {s.params.get('lm', 0) / 1e9:.2f}, vision {s.params.get('vision', 0) / 1e9:.2f}, merger "
            f"{s.params.get('merger', 0) / 1e9:.3f}); {c.dtype}; {c.gpu_memory:g} GiB card, {c.reserve:g} kept free",
            f"one trajectory: {c.tokens} tokens ({c.image_tokens} image, {c.new_tokens} written); LoRA r={c.lora.r} "
            f"on {','.join(c.lora.parts)}; R-GRPO group {c.group_size}, beta {c.beta:g}, {c.cache} cache",
            "",
            f"{'stage':7} {'mode':5} {'ckpt':4} {'weights':>8} {'grads':>8} {'optim':>8} {'ref':>8} "
            f"{'act/traj':>8} {'kv/row':>8} {'pool':>8} {'peak@1':>8}  largest that fits",
        ]
        for r in self.rows:
            fit = (
                (f"batch {r['fits']} per micro-step" if r["stage"] == "SFT" else f"group {r['fits']}")
                if r["fits"]
                else "does not fit"
            )
            out.append(
                f"{r['stage']:7} {r['mode']:5} {'on' if r['checkpointing'] else 'off':4} {g(r['weights'])} "
                f"{g(r['grads'])} {g(r['optimizer'])} {g(r['reference'])} {g(r['activations'])} "
                f"{g(r['kv'])} {g(r['pool'])} {g(r['total'])}  {fit}"
            )
        out.append(
            "GiB; pool = the static cache the group's rollouts keep through the update (KV, logits buffer, "
            "captured steps; 0 with --cache dynamic); peak@1 = one trajectory per micro-step (R-GRPO: the "
            "larger of the rollout of the group and the update with the pool). Estimates: measure with "
            "`bash benchmarks/gpu_check.sh`."
        )
        return "\n".join(out)
