"""CUDA-graph capture of one decode step, behind `RolloutConfig.cuda_graphs`.

A step handed to `capture` reads and writes only static buffers (ids, positions, the slot mask, the write
slot, the KV buffers, the logits it copies out), so recording it once and replaying it later computes the
step for whatever the engine copied into those buffers. Why `torch.cuda.CUDAGraph` rather than
`torch.compile(mode="reduce-overhead")`: the step is a fixed sequence of eager kernels over fixed shapes per
batch bucket, which is exactly what a graph records; compiling the whole VLM forward would cost minutes at
the real shapes, recompile for every bucket and every prefill width, and trip over the model's Python.
"""
from __future__ import annotations

from typing import Callable

import torch

WARMUP = 2  # eager runs on a side stream before capture (cuBLAS handles, lazy kernels, allocator)


def use_graphs(setting, device: torch.device) -> bool:
    """Does `RolloutConfig.cuda_graphs` (with a static cache) mean replayed graphs on `device`?"""
    if setting == "auto":
        return device.type == "cuda"
    if setting is True and device.type != "cuda":
        raise ValueError(f"RolloutConfig.cuda_graphs = True needs a CUDA device, but the policy is on {device}: "
                         "use cuda_graphs='auto' (graphs where CUDA is) or False")
    return bool(setting)


def graph_pool(device: torch.device):
    """One memory pool the buckets' graphs share (they never run at the same time)."""
    return torch.cuda.graph_pool_handle() if device.type == "cuda" else None


def capture(step: Callable[[], None], device: torch.device, pool) -> Callable[[], None]:
    """Record `step` as one CUDA graph; returns its replay. The warm-up runs compute the step for the inputs
    already in the buffers, which the first replay then computes again (the same values)."""
    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        step()
    return graph.replay
