import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # r3-tiny's ops are so small that OpenMP barriers on a shared 2-core box cost more than the math
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
