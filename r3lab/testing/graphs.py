"""CUDA-graph capture stood in for on a CPU (tests, `gpu_check.sh --smoke`).

The engine's captured step reads and writes only the pool's static buffers, so the step function itself, kept and
called again at every "replay", computes what a replayed graph would: an input the engine forgot to copy in gives a
wrong logit, as on a GPU. Everything around capture runs for real: the buckets and windows captured ahead, the
replay counts, a capture that fails (`fail=`: under "auto" the pool is marked broken, under True it raises).
"""

from __future__ import annotations

import contextlib
from unittest import mock


def standin_patches(fail: str = "") -> tuple[dict, list]:
    """What to patch, as {(module, name): value}, and the list the stood-in capture appends each step to."""
    from ..engine import graphs, rollouts

    captured = []

    def use(setting, device) -> bool:
        return setting is not False

    def capture(step, device, pool, first=True):
        if fail:
            raise RuntimeError(fail)
        captured.append(step)
        return step

    return {(graphs, "use_graphs"): use, (rollouts, "use_graphs"): use, (graphs, "capture"): capture}, captured


@contextlib.contextmanager
def standin_graphs(fail: str = ""):
    """Inside this block `cuda_graphs` "auto" and True mean graphs on any device, and capturing a step keeps the
    step (or raises RuntimeError(fail)); yields the list of steps "captured"."""
    patches, captured = standin_patches(fail)
    with contextlib.ExitStack() as stack:
        for (module, name), value in patches.items():
            stack.enter_context(mock.patch.object(module, name, value))
        yield captured
