"""What crosses between the host and the device during a rollout: one copy back per step, copies there batched.

The environment reads every token the model writes (a crop call closes on a token, a row stops on its end token),
so each step's chosen ids and log-probs come back to the host, packed together into one pinned buffer: one
transfer, the step's one wait. Nothing else is read back on the hot path; the engine's bookkeeping (each row's
next position, real slots, first used column) lives on the host, and the device keeps its own copies where a step
reads them (the sampled ids, the next positions, the scripts' forced tokens). What goes to the device goes as one
non-blocking copy from pinned memory: a crop step's ids, positions and slot mask together, or the index of the rows
that stay when some finish. On a CPU the same calls are views and nothing moves, so a test counts them
(`benchmarks/host_work.py`).
"""

from __future__ import annotations

import torch


class Link:
    """The host <-> device copies of one rollout, counted (`fetches`: device -> host, each a wait; `sends`)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.fetches = self.sends = 0
        self._host: torch.Tensor | None = None  # pinned staging for `fetch`, reused (each fetch waits for its copy)
        self._done = torch.cuda.Event() if self.cuda else None

    def fetch(self, ids: torch.Tensor, logprobs: torch.Tensor) -> tuple[list[int], list[float]]:
        """Chosen ids and their log-probs on the host, in one copy (float64 holds both exactly)."""
        packed = torch.stack((ids.to(torch.float64), logprobs.to(torch.float64)))
        if self.cuda:
            n = packed.numel()
            if self._host is None or self._host.numel() < n:
                self._host = torch.empty(max(n, 128), dtype=torch.float64, pin_memory=True)
            host = self._host[:n].view(packed.shape)  # contiguous: one asynchronous copy, no staging
            host.copy_(packed, non_blocking=True)
            self._done.record()
            mode = torch.cuda.get_sync_debug_mode()  # the step's one intended wait: never a sync-debug error
            if mode:
                torch.cuda.set_sync_debug_mode(0)
            try:
                self._done.synchronize()
            finally:
                if mode:
                    torch.cuda.set_sync_debug_mode(mode)
        else:
            host = packed
        self.fetches += 1
        got, lps = host.tolist()
        return [int(i) for i in got], lps

    def send(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Host integer tensors on the device, as one non-blocking copy from pinned memory (views of it, in order;
        the caching host allocator keeps the pinned block until its copy is done)."""
        flat = torch.cat([t.reshape(-1).to(torch.long) for t in tensors])
        if self.cuda:
            flat = flat.pin_memory()
        dev = flat.to(self.device, non_blocking=True)
        self.sends += 1
        out, at = [], 0
        for t in tensors:
            out.append(dev[at : at + t.numel()].view(t.shape))
            at += t.numel()
        return out

    def index(self, rows) -> torch.Tensor:
        """Row indices on the device (one send)."""
        return self.send(torch.tensor(list(rows), dtype=torch.long))[0]
