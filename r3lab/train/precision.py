"""Mixed precision for training: bfloat16 autocast, with attention kept in float32 on a CPU.

On a CPU with avx512_bf16 a bfloat16 matrix product is about 2.5x faster than a float32 one, but the CPU
flash-attention kernel is slower in bfloat16, its backward by 1.3-3x at r3-tiny's sizes (head_dim 16-32);
`benchmarks/train_step.py` measures both. So inside `autocast(...)` on a CPU the "sdpa" attention function runs
on float32 copies of q, k and v (the linear layers stay bfloat16); on a GPU it is plain autocast.
"""

from __future__ import annotations

import contextlib

import torch


def _fp32_sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention on float32 copies of bfloat16 CPU inputs; the output in the input's dtype."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.dtype != torch.bfloat16 or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    with torch.autocast("cpu", enabled=False):  # CPU autocast would cast SDPA's inputs back to bfloat16
        out, weights = sdpa_attention_forward(
            module, query.float(), key.float(), value.float(), attention_mask, **kwargs
        )
    return out.to(query.dtype), weights


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool = True):
    """bfloat16 autocast on `device` while the block runs (nothing when not `enabled`); on a CPU, SDPA attention
    in float32 too. The attention function is swapped in transformers' registry for the block only."""
    device_type = torch.device(device).type
    if not enabled:
        yield
        return
    if device_type != "cpu":
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
        return
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    local = ALL_ATTENTION_FUNCTIONS._local_mapping  # this instance's overrides, consulted before the global ones
    before = local.get("sdpa")
    local["sdpa"] = _fp32_sdpa
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    finally:
        if before is None:
            local.pop("sdpa", None)
        else:
            local["sdpa"] = before
