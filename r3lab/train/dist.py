"""torch.distributed helpers: one process per device under `torchrun`, DDP, rank-0-only side effects.

`torchrun --nproc_per_node N -m r3lab.cli train rgrpo ...` sets RANK / WORLD_SIZE / LOCAL_RANK;
`init()` then starts a process group (nccl on GPU, gloo on CPU). Without those variables everything
here is a no-op for a single process, so the same training code runs in a notebook.

GRPO groups are sharded whole (`shard`), so every advantage is computed from the complete group on
one rank; losses are normalised by global token / sequence counts (`all_sum`), so N ranks give the
gradient of the single-process run with the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist

from ..core.procs import die_with_parent


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0  # global rank of this process
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this node (selects the GPU)
    backend: str = ""  # "nccl", "gloo", or "" for a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def info() -> DistInfo:
    """The current process's place in the process group (a single process when none is running)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend()
        )
    return DistInfo()


def init(backend: str | None = None) -> DistInfo:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); idempotent.

    On GPU the process is pinned to `cuda:LOCAL_RANK` (move the model there afterwards). A rank torchrun started
    ends with torchrun (`die_with_parent`): a torchrun killed outright leaves no rank behind.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return info()
    if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun's agent is the parent
        die_with_parent()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    backend = backend or ("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return info()


def device() -> torch.device:
    """This rank's device: `cuda:LOCAL_RANK` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if info().distributed:
        dist.barrier()


def shard(items: Sequence, rank: int | None = None, world_size: int | None = None, unit: str = "prompts") -> list:
    """This rank's contiguous slice of `items`; the count must divide evenly (no group is ever split).

    Pass prompts (one per GRPO group), not trajectories, so groups stay whole on one rank.
    """
    d = info()
    rank = d.rank if rank is None else rank
    world_size = d.world_size if world_size is None else world_size
    n = len(items)
    if n % world_size:
        raise ValueError(
            f"{n} {unit} per step cannot be split evenly over {world_size} processes: "
            f"make the number of {unit} per step a multiple of the number of processes"
        )
    k = n // world_size
    return list(items[rank * k : (rank + 1) * k])


def deal(n: int, chunk: int = 1, rank: int | None = None, world_size: int | None = None) -> list[range]:
    """This rank's chunks of `range(n)` (chunks of `chunk` items, dealt round-robin over the ranks): a measurement
    that batches `chunk` items at a time sees the very batches it sees in one process, so its sum over ranks is
    the one process's result (every chunk on a single process)."""
    if n < 0 or chunk < 1:
        raise ValueError(f"deal needs n >= 0 and chunk >= 1, got n={n}, chunk={chunk}")
    d = info()
    rank = d.rank if rank is None else rank
    world_size = d.world_size if world_size is None else world_size
    return [range(a, min(a + chunk, n)) for a in range(rank * chunk, n, world_size * chunk)]


def all_sum(x: float | torch.Tensor) -> float:
    """Sum a scalar over ranks (a plain float on a single process)."""
    if not info().distributed:
        return float(x)
    t = torch.tensor([float(x)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item())


def all_gather_floats(values: Sequence[float | None]) -> list[float | None]:
    """Concatenate per-rank lists of equal length in rank order (None survives as None)."""
    d = info()
    if not d.distributed:
        return list(values)
    t = torch.tensor(
        [float("nan") if v is None else float(v) for v in values], dtype=torch.float64, device=_comm_device()
    )
    out = [torch.empty_like(t) for _ in range(d.world_size)]
    dist.all_gather(out, t)
    return [None if v != v else v for v in torch.cat(out).tolist()]


def gather_objects(obj) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank (`[obj]` on a single process)."""
    d = info()
    if not d.distributed:
        return [obj]
    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def all_mean(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of scalar metrics over ranks (same keys on every rank)."""
    d = info()
    if not d.distributed:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return {k: v / d.world_size for k, v in zip(keys, t.tolist())}


def broadcast_object(obj, src: int = 0):
    if not info().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_ddp(module: torch.nn.Module, find_unused_parameters: bool = False) -> torch.nn.Module:
    """DistributedDataParallel around `module` when distributed (it broadcasts rank 0's weights), else `module`."""
    d = info()
    if not d.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    dev = next(module.parameters()).device
    ids = [dev.index] if dev.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=find_unused_parameters)


def _comm_device() -> torch.device:
    return device() if info().backend == "nccl" else torch.device("cpu")
