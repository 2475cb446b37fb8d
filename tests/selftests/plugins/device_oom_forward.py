"""The device runs out of memory in the forward pass (torch.OutOfMemoryError, as CUDA and recent torch_npu raise)."""

import pytest
import torch


def _out_of_memory(module, inputs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.77 GiB total capacity; "
                                 "14.90 GiB already allocated)")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    result = yield
    if fixturedef.argname == "device_model":
        result.register_forward_pre_hook(_out_of_memory)
    return result
