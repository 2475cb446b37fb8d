"""A seeded input-dependent device bug: the device model (the bfloat16 one) is 5 % off, but only on a saturated image.

The default image never saturates (its normalised mean is near 0), so the accuracy tests pass; the input set's
white image (normalised mean above 2) is the one input that shows it.
"""

import torch


def _corrupt_saturated(module, args, kwargs, output):
    pixel_values = kwargs.get("pixel_values", args[0] if args else None)
    if (not hasattr(output, "pooler_output") or not isinstance(pixel_values, torch.Tensor)
            or pixel_values.dim() != 4 or pixel_values.dtype != torch.bfloat16):
        return None  # not the whole model, or not the device's
    saturated = pixel_values.float().mean(dim=(1, 2, 3)) > 1.5
    if bool(saturated.any()):
        output.last_hidden_state[saturated] *= 1.05  # the pooled output is its first token: off as much
    return output


torch.nn.modules.module.register_module_forward_hook(_corrupt_saturated, with_kwargs=True)
