"""CUDA-graph capture of one decode step, behind `RolloutSettings.cuda_graphs`.

A step handed to `capture` reads and writes only static buffers (ids, positions, the slot mask, the write
slot, the KV buffers, the logits it copies out), so recording it once and replaying it later computes the
step for whatever the engine copied into those buffers. Why `torch.cuda.CUDAGraph` rather than
`torch.compile(mode="reduce-overhead")`: the step is a fixed sequence of eager kernels over fixed shapes per
batch bucket, which is exactly what a graph records; compiling the whole VLM forward would cost minutes at
the real shapes, recompile for every bucket and every prefill width, and trip over the model's Python.

The first warm-up of a pool's first capture runs under `torch.cuda.set_sync_debug_mode("error")`: a step that
waits for the host (a value read back, a host-made tensor copied in) fails there with a Python stack, rather than
as an opaque error at the end of capture. Capture uses `capture_error_mode="thread_local"`, so CUDA calls other
threads make meanwhile (a DataLoader's pinning thread) do not invalidate it, on the policy's own device and a side
stream. Attention runs one pinned SDPA kernel (memory-efficient, math as the fallback) in capture and replay alike.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

WARMUP = 2  # eager runs on a side stream before the first capture (cuBLAS handles, lazy kernels, allocator)
WARMUP_AFTER = 1  # before each later capture of the same pool


def use_graphs(setting, device: torch.device) -> bool:
    """Does `cuda_graphs` (with a static cache) mean replayed graphs on `device`?"""
    if setting == "auto":
        return device.type == "cuda"
    if setting is True and device.type != "cuda":
        raise ValueError(
            f"cuda_graphs = True needs a CUDA device, but the policy is on {device}: "
            "use cuda_graphs='auto' (graphs where CUDA is) or False"
        )
    return bool(setting)


def graph_pool(device: torch.device):
    """One memory pool the buckets' graphs share (they never run at the same time)."""
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        return torch.cuda.graph_pool_handle()


def attention_kernel(device: torch.device):
    """The SDPA kernel a static-cache step runs on CUDA: memory-efficient attention, which takes a boolean mask over a
    long buffer (flash attention takes none; cuDNN's has failed under graphs past 1,024 keys with such a mask), math
    where it cannot run. A no-op elsewhere."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


@contextlib.contextmanager
def sync_debug(mode: str = "error"):
    """Implicit host-device synchronisation is an error (or a warning) inside this block, on CUDA."""
    if not torch.cuda.is_available():
        yield
        return
    was = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(was)


def capture(step: Callable[[], None], device: torch.device, pool, first: bool = True) -> Callable[[], None]:
    """Record `step` as one CUDA graph; returns its replay. The warm-up runs compute the step for whatever the buffers
    hold (the engine points the write slot at a slot no row holds yet)."""
    with torch.cuda.device(device):
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for i in range(WARMUP if first else WARMUP_AFTER):
                with sync_debug("error") if first and i == 0 else contextlib.nullcontext():
                    step()
        torch.cuda.current_stream(device).wait_stream(side)
        # capture_begin / capture_end rather than `torch.cuda.graph`, whose entry synchronises, empties the allocator's
        # cache (the training step's blocks too) and, in some versions, runs gc, once per capture: a pool captures
        # tens of steps in a row
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.stream(side):
            graph.capture_begin(pool=pool, capture_error_mode="thread_local")
            try:
                step()
            except BaseException:
                with contextlib.suppress(Exception):  # the step's own error is the one to report
                    graph.capture_end()
                raise
            graph.capture_end()
    return graph.replay
