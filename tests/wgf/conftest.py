"""One torch thread for the WGF tests: on a shared 2-core machine, two threads contend and run ~6x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
