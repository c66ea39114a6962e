import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # r3-tiny's ops are so small that OpenMP barriers on a shared 2-core box cost more than the math
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def standin_graphs(monkeypatch, fail: str = "") -> list:
    """CUDA-graph capture on this CPU, stood in for (`r3lab.testing.graphs`): the "captured" step is the engine's own
    step function, which reads only the static buffers, so replaying it after the engine copied a step's inputs in
    computes what a replayed graph would, and an input left stale gives a wrong logit. Returns the steps "captured"."""
    from r3lab.testing.graphs import standin_patches

    patches, captured = standin_patches(fail)
    for (module, name), value in patches.items():
        monkeypatch.setattr(module, name, value)
    return captured


@pytest.fixture(params=["dynamic", "static", "graphed"])
def cache(request, monkeypatch):
    """The cache kinds a rollout runs with: today's growing cache, the static one, the static one replayed."""
    if request.param == "graphed":
        standin_graphs(monkeypatch)
        monkeypatch.setattr("r3lab.engine.pool.WINDOW", 64)  # several attention windows at r3-tiny's lengths
        return "static"
    return request.param
