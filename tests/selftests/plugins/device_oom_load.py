"""Loading the device model runs out of memory, as older torch_npu reports it (a RuntimeError in words).

Only the device model is affected: it is the one loaded in a dtype other than float32
(run with --dtype bfloat16); the CPU float32 reference loads normally.
"""

import fixtures.models

_load_model = fixtures.models.load_model


def _load_or_fail(checkpoint, dtype="float32", device="cpu"):
    if dtype != "float32":
        raise RuntimeError("NPU out of memory. Tried to allocate 330.00 MiB (NPU 0; 60.97 GiB total capacity; "
                           "60.80 GiB already allocated)")
    return _load_model(checkpoint, dtype, device)


fixtures.models.load_model = _load_or_fail
