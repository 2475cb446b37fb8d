"""A seeded device-placement bug: the device model is handed the pixel values still on the host.

A stand-in card that computes on the CPU cannot notice; a real device (or the simulated one) must.
"""

import fixtures.outputs

_forward = fixtures.outputs.forward


def _forward_on_host_inputs(model, inputs):
    return _forward(model, inputs.cpu())  # the bug: the .to(device) above is undone


fixtures.outputs.forward = _forward_on_host_inputs
