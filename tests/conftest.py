import gc

import pytest

import r3lab


def pytest_configure(config):
    r3lab.configure_threads()  # one thread unless OMP_NUM_THREADS says otherwise (see env.configure_threads)


@pytest.fixture(autouse=True)
def _collect():
    yield
    gc.collect()
