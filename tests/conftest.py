import gc

import pytest

import r3lab
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_trajectory


def pytest_configure(config):
    r3lab.configure_threads()  # one thread unless OMP_NUM_THREADS says otherwise (see env.configure_threads)


# the longest tests start first, so that on two workers none of them is left running alone at the end
FIRST = ("binder", "slow", "notebooks")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: next((i for i, m in enumerate(FIRST) if item.get_closest_marker(m)), len(FIRST)))


@pytest.fixture(autouse=True)
def _collect():
    yield
    gc.collect()


# shared by test_attention*.py (module scope: each module gets its own model)
@pytest.fixture(scope="module")
def policy():
    # 3 layers, 4 heads over 2 KV heads (GQA), so layer/head selection and KV repeat are exercised
    return build_tiny(TinyConfig(layers=3, seed=1))


@pytest.fixture(scope="module")
def trajs(policy):
    return [toy_trajectory(policy, size=(448, 336)), toy_trajectory(policy, size=(300, 500), crop="square")]
