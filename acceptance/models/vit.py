"""DINOv3 ViT (``dinov3_vit``): ViT-S/16, S+/16, B/16, L/16, H+/16 and 7B/16, some with a gated (SwiGLU) MLP.

Output: ``last_hidden_state`` [B, 1 CLS + registers + (H/p)(W/p) patches, hidden],
``pooler_output`` [B, hidden], the final CLS token. Probe points: the
embeddings, every transformer block (``layer.N`` on disk; transformers 5 nests
them under ``model.layer`` in memory) and the final ``norm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import CheckpointError
from .base import ModelFamily, ProbePoint, find_module_list, named_module

if TYPE_CHECKING:
    from torch import nn

#: DINOv3 ViT-B/16 (facebook/dinov3-vitb16-pretrain-lvd1689m); other fields at DINOv3ViTConfig defaults
VITB16_CONFIG: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "patch_size": 16,
    "num_register_tokens": 4,
    "hidden_act": "gelu",
    "use_gated_mlp": False,
    "rope_theta": 100.0,
    "layer_norm_eps": 1e-5,
    "key_bias": False,
    "image_size": 224,
}

#: (hidden size, gated MLP) -> DINOv3 ViT size name (convert_dinov3_vit_to_hf.py's published sizes)
VIT_SIZES = {(384, False): "S", (384, True): "S+", (768, False): "B", (1024, False): "L",
             (1280, True): "H+", (4096, True): "7B"}


def transformer_blocks(model: "nn.Module") -> Any:
    """The list of transformer blocks: the ModuleList with one entry per config.num_hidden_layers
    (``model.layer`` in transformers 4.x, ``model.model.layer`` in 5.x)."""
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    return find_module_list(model, expected, f"transformer blocks (config.num_hidden_layers={expected})",
                            "dinov3_vit")[1]


@dataclass(frozen=True)
class ViTFamily(ModelFamily):
    def display_name(self, config: Mapping[str, Any]) -> str:
        hidden, patch = config.get("hidden_size"), config.get("patch_size", 16)
        size = VIT_SIZES.get((hidden, bool(config.get("use_gated_mlp", False))))
        if size:
            return f"ViT-{size}/{patch}"
        return f"ViT/{patch} (hidden {hidden}, {config.get('num_hidden_layers', '?')} layers)"

    def check_config_relations(self, config_file: Path, config: Mapping[str, Any]) -> None:
        hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
        if isinstance(hidden, int) and isinstance(heads, int) and hidden % heads:
            raise CheckpointError(
                f"{config_file}: hidden_size {hidden} is not divisible by num_attention_heads {heads}",
                "re-download config.json from the model repository (ViT-B/16: 768 and 12)")

    def input_stride(self, config: Mapping[str, Any]) -> int:
        return int(config.get("patch_size", 16))

    def output_shapes(self, config: Mapping[str, Any], batch: int, height: int, width: int) -> dict[str, list[int]]:
        """1 CLS + register tokens + one token per patch; pooler_output is the CLS token."""
        patch = self.input_stride(config)
        tokens = 1 + int(config.get("num_register_tokens", 0)) + (height // patch) * (width // patch)
        hidden = int(config["hidden_size"])
        return {"last_hidden_state": [batch, tokens, hidden], "pooler_output": [batch, hidden]}

    def explain_shape(self, name: str, config: Mapping[str, Any]) -> str:
        if name == "last_hidden_state":
            return (f"[batch, 1 CLS + {config.get('num_register_tokens', 0)} registers + patches, hidden] "
                    "from config.json")
        return "[batch, hidden]"

    def consistency_reason(self) -> str:
        return "DINOv3ViTModel's pooler_output is the CLS token of last_hidden_state, after the final norm"

    def probe_points(self, model: "nn.Module") -> list[ProbePoint]:
        """Embeddings output, each block's output and the final norm."""
        embeddings = named_module(model, "embeddings", self.model_type)
        norm = named_module(model, "norm", self.model_type)
        blocks = transformer_blocks(model)
        points = [ProbePoint("embeddings", 0, embeddings)]
        # Named as in the checkpoint file (layer.N): transformers 5 nests the blocks under
        # model.layer in memory, and reports must compare across versions.
        points += [ProbePoint(f"layer.{index}", index + 1, block) for index, block in enumerate(blocks)]
        points.append(ProbePoint("norm", len(blocks) + 1, norm))
        return points

    def probe_shapes(self, config: Mapping[str, Any], batch: int, height: int,
                     width: int) -> dict[str, list[int]]:
        shape = self.output_shapes(config, batch, height, width)["last_hidden_state"]
        names = ["embeddings", *(f"layer.{i}" for i in range(int(config["num_hidden_layers"]))), "norm"]
        return {name: list(shape) for name in names}

    def describe_probe_points(self, config: Mapping[str, Any]) -> str:
        return (f"embeddings, the {config.get('num_hidden_layers')} layers of config.json's num_hidden_layers "
                "and the final norm, each [batch, tokens, hidden]")

    def layer_scale_value(self, model_config: Any) -> float:
        return float(model_config.layerscale_value)


FAMILY = ViTFamily(
    model_type="dinov3_vit",
    title="DINOv3 ViT",
    example_checkpoint="facebook/dinov3-vitb16-pretrain-lvd1689m",
    config_class="DINOv3ViTConfig",
    model_class="DINOv3ViTModel",
    builtin_config=VITB16_CONFIG,
    config_sizes={"hidden_size": 1, "intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1,
                  "patch_size": 1, "num_register_tokens": 0, "num_channels": 1, "image_size": 1},
    layer_scale_suffix="lambda1",
    token_zero="CLS",
    size_mismatch_example="ViT-L/16 weights with a ViT-B/16 config",
)
