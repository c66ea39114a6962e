"""r3-tiny's initialisations, each a lever of the research findings (research/FINDINGS.md, initialisation).

`init="lecun"` keeps a narrow vision tower learning; the others were measured as levers of *where*
and are off by default: a sine-cosine or pixel-Fourier start for Qwen3-VL's learned position grid,
whole-number tokens with Fourier embeddings (Pix2Seq-style location tokens written as numbers), and a
larger initial gain of Qwen3's per-head q/k norms (sharper attention from the start).
"""

from __future__ import annotations

import torch

from ..core.regions import ViewConfig
from ..core.settings import short


def initialise(model, cfg, tok, view: ViewConfig) -> None:
    """Apply every initialisation `cfg` (a TinyConfig) asks for; raises naming a bad setting."""
    if cfg.init == "lecun":
        _lecun_init(model)
    elif cfg.init != "hf":
        raise ValueError(f"TinyConfig.init must be 'lecun' or 'hf', got {short(cfg.init)}")
    if cfg.pos_init == "sincos":
        _sincos_init(model)
    elif cfg.pos_init == "fourier":
        _fourier_grid(model, view)
    elif cfg.pos_init != "normal":
        raise ValueError(f"TinyConfig.pos_init must be 'normal', 'sincos' or 'fourier', got {short(cfg.pos_init)}")
    if cfg.number_init == "fourier":
        _fourier_numbers(model, tok, cfg)
    elif cfg.number_init != "random":
        raise ValueError(f"TinyConfig.number_init must be 'random' or 'fourier', got {short(cfg.number_init)}")
    if cfg.qk_norm_init != 1.0:
        _qk_gain(model, cfg.qk_norm_init)


def fourier_features(
    values: torch.Tensor, n_freq: int, period_min: float = 2.5, period_max: float = 250.0
) -> torch.Tensor:
    """[sin, cos] of `values` at `n_freq` periods from period_min to period_max (geometric): (..., 2 n_freq)."""
    periods = period_min * (period_max / period_min) ** (torch.arange(n_freq, dtype=torch.float64) / max(1, n_freq - 1))
    a = values.double().unsqueeze(-1) * (2 * torch.pi / periods)
    return torch.cat([a.sin(), a.cos()], -1)


@torch.no_grad()
def _lecun_init(model) -> None:
    """N(0, 1/fan_in) for every linear/conv weight, residual outputs scaled by 1/sqrt(2 * depth).

    transformers' N(0, 0.02) is sized for widths in the thousands; at width 64 it starves the
    vision tower (its gradient vanishes within a few hundred steps: research/FINDINGS.md, initialisation).
    """
    vis = getattr(model.model, "visual", None) or model.model.vision_model  # Qwen / Idefics3 (SmolVLM)
    lm = getattr(model.model, "language_model", None) or model.model.text_model
    blocks = vis.blocks if hasattr(vis, "blocks") else vis.encoder.layers
    for root, depth in ((vis, len(blocks)), (lm, len(lm.layers))):
        for name, m in root.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d, torch.nn.Conv2d)):
                std = m.weight[0].numel() ** -0.5
                if name.endswith(
                    ("attn.proj", "down_proj", "o_proj", "mlp.linear_fc2", "self_attn.out_proj", "mlp.fc2")
                ):
                    std /= (2 * depth) ** 0.5
                m.weight.normal_(0.0, std)
                if m.bias is not None:
                    m.bias.zero_()
    if getattr(vis, "pos_embed", None) is not None:  # Qwen3-VL's learned grid: unit scale, like the patches
        vis.pos_embed.weight.normal_(0.0, 1.0)
    emb = model.get_input_embeddings().weight  # tied to lm_head: unit-scale logits at init
    emb.normal_(0.0, emb.shape[1] ** -0.5)


@torch.no_grad()
def _sincos_init(model) -> None:
    """Qwen3-VL's learned position grid started as a 2-D sine-cosine table (MAE's fixed embedding).

    A random grid gives every patch an unrelated code, so box digits must be learned position by
    position; sine-cosine features make row and column (and their periodic parts) linear from the start.
    """
    emb, n, dim, side = _grid(model, "sincos")
    freqs = 1.0 / (100.0 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4)))
    grid = torch.arange(side, dtype=torch.float64)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")

    def axis(v):
        a = v.reshape(-1, 1) * freqs
        return torch.cat([a.sin(), a.cos()], 1)

    emb.weight.copy_(torch.cat([axis(rows), axis(cols)], 1).to(emb.weight.dtype))


def _grid(model, what: str):
    emb = getattr(model.model.visual, "pos_embed", None)
    if emb is None:
        raise ValueError(
            f"TinyConfig.pos_init={short(what)} needs family='qwen3_vl' (the only family with a pos_embed)"
        )
    n, dim = emb.weight.shape
    if dim % 4:
        raise ValueError(f"pos_init={short(what)} needs vision_hidden divisible by 4, got {dim}")
    return emb, n, dim, int(round(n**0.5))


@torch.no_grad()
def _fourier_grid(model, view: ViewConfig) -> None:
    """The position grid as the number tokens' Fourier code, in pixels of the largest main view: grid
    point i sits at pixel (i + 0.5) * side_px / side, so a patch's code is its centre's coordinate's."""
    emb, n, dim, side = _grid(model, "fourier")
    px = (torch.arange(side, dtype=torch.float64) + 0.5) * view.max_pixels**0.5 / side
    code = fourier_features(px, dim // 4)  # (side, dim / 2)
    rows = code.unsqueeze(1).expand(side, side, -1)
    cols = code.unsqueeze(0).expand(side, side, -1)
    emb.weight.copy_(torch.cat([rows, cols], -1).reshape(n, dim).to(emb.weight.dtype))


@torch.no_grad()
def _fourier_numbers(model, tok, cfg) -> None:
    """Number tokens' (tied) embeddings start as sin/cos of their value in their first 32 dims, so a
    hidden state that is a position code scores the nearby numbers highest (FoNE-style embeddings)."""
    if cfg.numbers != "whole":
        raise ValueError("TinyConfig.number_init='fourier' needs numbers='whole'")
    emb = model.get_input_embeddings().weight
    vocab = tok.get_vocab()
    n_freq = 16
    for n in range(cfg.max_number + 1):
        feats = fourier_features(torch.tensor(float(n)), n_freq).to(emb.dtype) / n_freq**0.5
        for form in (str(n), "\u0120" + str(n)):  # bare, and after a space (byte-level BPE's space mark)
            if form in vocab:
                emb[vocab[form], : 2 * n_freq] = feats


@torch.no_grad()
def _qk_gain(model, gain: float) -> None:
    norms = [m for name, m in model.named_modules() if name.endswith(("self_attn.q_norm", "self_attn.k_norm"))]
    if not norms:
        raise ValueError("TinyConfig.qk_norm_init needs family='qwen3_vl' (Qwen2.5-VL has no q/k norms)")
    for m in norms:
        m.weight.fill_(gain)
