import gc

import pytest

import r3lab
from r3lab.model.tiny import TinyConfig, build_tiny
from r3lab.testing import toy_trajectory


def pytest_configure(config):
    r3lab.configure_threads()  # one thread unless OMP_NUM_THREADS says otherwise (see env.configure_threads)


# the longest tests start first, so that on two workers none of them is left running alone at the end
FIRST = ("routes", "slow", "notebooks")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: next((i for i, m in enumerate(FIRST) if item.get_closest_marker(m)), len(FIRST)))


def pytest_collection_finish(session):
    # what collection imported (torch, transformers, the library: some 400,000 objects) lives as long as the
    # process; frozen, it is left out of the collection after every test, which otherwise took 0.2-0.7 s a test
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True, scope="module")
def _collect_module():
    yield
    gc.unfreeze()  # the module's own fixtures are gone: every cycle left since collection is freed
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect():
    yield
    gc.collect()  # cycles the test left (models, figures) are freed before the next test builds its own;
    gc.freeze()  # what is still alive (fixtures, modules imported on first use) is left to the module's collection


# shared by test_attention*.py (module scope: each module gets its own model)
@pytest.fixture(scope="module")
def policy():
    # 3 layers, 4 heads over 2 KV heads (GQA), so layer/head selection and KV repeat are exercised
    return build_tiny(TinyConfig(layers=3, seed=1))


@pytest.fixture(scope="module")
def trajs(policy):
    return [toy_trajectory(policy, size=(448, 336)), toy_trajectory(policy, size=(300, 500), crop="square")]
