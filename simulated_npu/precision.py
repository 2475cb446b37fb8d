"""The arithmetic of the simulated chip: torch_npu's option registry and what each option does to the numbers.

As on the card, precision is decided per operator from the options in force when it runs:

- ``ACL_PRECISION_MODE`` (set_option; unset: the chip's default, must_keep_origin_dtype on Atlas A2/A3,
  allow_fp32_to_fp16 on the older Ascend910A/310P): under allow_fp32_to_fp16 the float32 matrix
  operators (matmuls, convolutions, attention) run in float16 - inputs and output rounded to it;
- ``ALLOW_CONV_HF32`` (torch.npu.conv.allow_hf32, on when unset) and ``ALLOW_MATMUL_HF32``
  (torch.npu.matmul.allow_hf32, off when unset): HF32 keeps 10 mantissa bits of a float32 input,
  accumulation stays float32.

bfloat16 and float16 models run natively. The registry holds strings, read back as bytes, as
torch_npu's ``_C._npu_getOption`` does.
"""

from __future__ import annotations

import re

import torch

ACL_PRECISION_MODE = "ACL_PRECISION_MODE"
#: set_option's accepted values per option, as the torch_npu wheels check them
ALLOWED = {ACL_PRECISION_MODE: ("allow_fp32_to_fp16", "must_keep_origin_dtype")}
#: torch.npu.<group>.allow_hf32 -> (registry key, the value an unset key means)
HF32_SWITCHES = {"conv": ("ALLOW_CONV_HF32", True), "matmul": ("ALLOW_MATMUL_HF32", False)}

#: aten operator -> positions of its multiplied operands (biases are added in the float32 accumulator)
MATMUL_OPERANDS = {"mm": (0, 1), "bmm": (0, 1), "matmul": (0, 1), "linear": (0, 1), "addmm": (1, 2),
                   "baddbmm": (1, 2), "addbmm": (1, 2), "mv": (0, 1), "addmv": (1, 2), "dot": (0, 1)}
CONV_OPERANDS = {"convolution": (0, 1), "_convolution": (0, 1), "conv2d": (0, 1), "conv1d": (0, 1),
                 "conv3d": (0, 1)}
#: fused attention is a cube-unit operator too: float16 under allow_fp32_to_fp16
ATTENTION_OPERANDS = {"_scaled_dot_product_flash_attention_for_cpu": (0, 1, 2),
                      "_scaled_dot_product_attention_math": (0, 1, 2), "scaled_dot_product_attention": (0, 1, 2)}


def chip_default_precision_mode(chip: str) -> str:
    """CANN's ACL_PRECISION_MODE for a chip when none is set."""
    if re.match(r"Ascend910(B|_9)", chip.replace(" ", ""), re.IGNORECASE):
        return "must_keep_origin_dtype"
    return "allow_fp32_to_fp16"


class OptionRegistry:
    """torch_npu's option registry: set_option writes it, the allow_hf32 switches read and write it."""

    def __init__(self, chip: str):
        self.chip = chip
        self.values: dict[str, str] = {}

    def set_option(self, options: dict) -> None:
        if not isinstance(options, dict):
            raise TypeError(f"npu option must be a dict, but got {type(options).__name__}")
        for key, value in options.items():
            allowed = ALLOWED.get(key)
            if allowed is not None and str(value) not in allowed:
                raise ValueError(f"value of {key} should be in {list(allowed)} but got {value}")
        self.values.update({str(key): str(value) for key, value in options.items()})

    def get_option(self, key: str) -> bytes | None:
        value = self.values.get(key)
        return value.encode() if value is not None else None

    def hf32(self, group: str) -> bool:
        key, unset = HF32_SWITCHES[group]
        value = self.values.get(key)
        return unset if value is None else value == "enable"

    def set_hf32(self, group: str, value: object) -> None:
        if not isinstance(value, bool):  # the wheels refuse anything else
            raise TypeError(f"allow_hf32 must be a bool, but got {type(value).__name__}")
        self.values[HF32_SWITCHES[group][0]] = "enable" if value else "disable"

    def precision_mode(self) -> str:
        return self.values.get(ACL_PRECISION_MODE) or chip_default_precision_mode(self.chip)


def round_to_hf32(tensor: torch.Tensor) -> torch.Tensor:
    """float32 rounded to 10 mantissa bits, nearest with ties to even; NaN and Inf unchanged."""
    bits = tensor.contiguous().view(torch.int32)
    rounded = ((bits + 0x0FFF + ((bits >> 13) & 1)) & ~0x1FFF).view(torch.float32).view_as(tensor)
    return torch.where(torch.isfinite(tensor), rounded, tensor)


def round_to_float16(tensor: torch.Tensor) -> torch.Tensor:
    """float32 as float16 holds it (overflow to Inf included), kept in float32."""
    return tensor.to(torch.float16).to(torch.float32)


class Arithmetic:
    """How one operator's float32 inputs and outputs are rounded under the options in force."""

    def __init__(self, registry: OptionRegistry):
        self.registry = registry

    def plan(self, name: str) -> tuple[tuple[int, ...], object, bool] | None:
        """(positions to round, rounding, round the output too) for aten operator ``name``, None for none."""
        if name in MATMUL_OPERANDS or name in CONV_OPERANDS or name in ATTENTION_OPERANDS:
            if self.registry.precision_mode() == "allow_fp32_to_fp16":
                positions = MATMUL_OPERANDS.get(name) or CONV_OPERANDS.get(name) or ATTENTION_OPERANDS[name]
                return positions, round_to_float16, True
            if name in CONV_OPERANDS and self.registry.hf32("conv"):
                return CONV_OPERANDS[name], round_to_hf32, False
            if name in MATMUL_OPERANDS and self.registry.hf32("matmul"):
                return MATMUL_OPERANDS[name], round_to_hf32, False
        return None

    def apply(self, name: str, args: tuple) -> tuple[tuple, object | None]:
        """The arguments with their rounded float32 operands, and the output rounding (or None)."""
        plan = self.plan(name)
        if plan is None:
            return args, None
        positions, rounding, output_too = plan
        chosen = [index for index in positions if index < len(args) and isinstance(args[index], torch.Tensor)
                  and args[index].dtype == torch.float32]
        if not chosen:
            return args, None
        rounded = tuple(rounding(arg) if index in chosen else arg for index, arg in enumerate(args))
        return rounded, (rounding if output_too else None)
