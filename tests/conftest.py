"""Shared test settings."""

import pytest
import torch

#: Test folders whose torch work runs on one thread: on a shared 2-core machine two threads contend and the
#: OT, WGF and NTK tests run several times slower.
ONE_THREAD = {"ot", "wgf", "analysis"}


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    if request.node.path.parent.name not in ONE_THREAD:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
