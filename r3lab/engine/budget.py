"""What a rollout will ask of the model and the machine, held against what they have before any work: each prompt's
tokens plus the answer's budget against the model's positions, and the attention a padded prefill builds against
the memory this machine has free.

A 20,000-character question is some 20,000 tokens: a padded batch of such prompts makes the CPU's attention build
rows x tokens x tokens masks and scores (13 GB and growing, with no rollout done, before this check); one more
character per token and the machine runs out. The estimate is refused with its numbers and the fix.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

from ..core.settings import short

if TYPE_CHECKING:
    from ..core.trajectory import Trajectory
    from ..model.policy import Policy

BYTES_PER_SCORE = 8  # measured on CPU: a padded prefill holds about 7 bytes per (prompt, token, token)
MEMORY_SHARE = 0.5  # a prefill may take at most this share of the memory free when it starts


def free_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's MemAvailable, within a cgroup's limit and this process's
    address-space limit, `ulimit -v`), or None."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        if limit != "max":
            free = min(free if free is not None else 1 << 62, int(limit) - used)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            free = min(free if free is not None else 1 << 62, max(0, soft - mapped))
    except (ImportError, OSError, ValueError):
        pass
    return free


def check_budget(
    policy: "Policy", prompts: Sequence["Trajectory"], max_new_tokens: int, per_prefill: int, device_type: str = "cpu"
) -> None:
    """ValueError, before any rollout, naming the sample when a prompt's tokens plus `max_new_tokens` exceed the
    model's positions, or when a padded prefill of `per_prefill` prompts (on CPU, where attention builds its scores
    and masks in full) would take more than half the memory free now, with the estimate and the fix."""
    lengths = [len(t.input_ids()) for t in prompts]
    names = [t.meta.get("sample_id") or f"#{i}" for i, t in enumerate(prompts)]
    limit = getattr(policy, "context_length", None)  # a prompt alone past it is refused when it is tokenized
    if limit is not None:
        for n, name in zip(lengths, names):
            if n + max_new_tokens > limit:
                raise ValueError(
                    f"sample {short(name)}: its prompt is {n:,} tokens, and with max_new_tokens = "
                    f"{max_new_tokens:,} a rollout needs {n + max_new_tokens:,} positions, more than the "
                    f"{limit:,} the model has: shorten its question, or lower max_new_tokens"
                )
    if device_type != "cpu" or per_prefill < 2 or not lengths:
        return  # one prompt needs no padding mask: CPU attention then runs in memory linear in its length
    free = free_memory()
    if free is None:
        return
    for a in range(0, len(lengths), per_prefill):
        chunk = lengths[a : a + per_prefill]
        if len(chunk) < 2:
            continue
        longest = max(chunk)
        need = len(chunk) * longest * longest * BYTES_PER_SCORE
        if need > MEMORY_SHARE * free:
            name = names[a + chunk.index(longest)]
            raise ValueError(
                f"sample {short(name)}: its prompt is {longest:,} tokens; a prefill of {len(chunk)} prompts "
                f"padded to it builds attention of about {need / 2**30:.1f} GiB, more than half of the "
                f"{free / 2**30:.1f} GiB this machine has free: shorten that question (is the file "
                "right?), or roll out fewer rows at once (batch_rows)"
            )
