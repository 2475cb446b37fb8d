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

from ..checkpoint_files import ACTIVATION, BOOLEAN, FINITE, POSITIVE, RGB_CHANNELS
from ..errors import CheckpointError
from .base import (
    COCO_JPG,
    COCO_PNG,
    COCO_PNG_PIXEL_SHA256,
    ModelFamily,
    ProbePoint,
    PublishedReference,
    PublishedSlice,
    find_module_list,
    named_module,
)

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
VIT_SIZES: dict[tuple[Any, bool], str] = {(384, False): "S", (384, True): "S+", (768, False): "B", (1024, False): "L",
             (1280, True): "H+", (4096, True): "7B"}


# --- published reference values ---------------------------------------------------------------------------
# Slices: pooler_output[0, :5] (the CLS token) and the first patch token, last_hidden_state[0, 1 + 4 registers, :5].
#: tests/models/dinov3_vit/test_modeling_dinov3_vit.py (DINOv3ViTModelIntegrationTest), fp32, rtol = atol = 1e-4
TEST_SOURCE = ("huggingface/transformers tests/models/dinov3_vit/test_modeling_dinov3_vit.py "
               "@ 0159620269dec5524b126697473c0bdc71159052 (integration test, PNG fixture)")
#: convert_dinov3_vit_to_hf.py's expected outputs, checked there to atol = rtol = 1e-3 on the COCO JPEG
CONVERSION_SOURCE = ("huggingface/transformers src/transformers/models/dinov3_vit/convert_dinov3_vit_to_hf.py "
                     "@ a77460f27c7be433514120fff2ca64607c7a97c9 (conversion check, COCO JPEG)")


def _published_vit(hidden: int, intermediate: int, layers: int, heads: int, gated: bool,
                   **other: Any) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """The config fields and on-disk tensor shapes that identify a published ViT size."""
    config = {"hidden_size": hidden, "intermediate_size": intermediate, "num_hidden_layers": layers,
              "num_attention_heads": heads, "patch_size": 16, "num_register_tokens": 4, "use_gated_mlp": gated,
              "hidden_act": "silu" if gated else "gelu", **other}
    last = f"layer.{layers - 1}.mlp"
    shapes = {"embeddings.patch_embeddings.weight": (hidden, 3, 16, 16), "embeddings.register_tokens": (1, 4, hidden),
              f"{last}.up_proj.weight": (intermediate, hidden), "norm.weight": (hidden,)}
    if gated:
        shapes[f"{last}.gate_proj.weight"] = (intermediate, hidden)
    return config, shapes


#: hub name -> identifying (config, shapes): convert_dinov3_vit_to_hf.py's sizes
PUBLISHED_VITS = {
    "facebook/dinov3-vits16-pretrain-lvd1689m": _published_vit(384, 1536, 12, 6, False),
    "facebook/dinov3-vits16plus-pretrain-lvd1689m": _published_vit(384, 1536, 12, 6, True),
    "facebook/dinov3-vitb16-pretrain-lvd1689m": _published_vit(768, 3072, 12, 12, False),
    "facebook/dinov3-vitl16-pretrain-lvd1689m": _published_vit(1024, 4096, 24, 16, False),
    "facebook/dinov3-vith16plus-pretrain-lvd1689m": _published_vit(1280, 5120, 32, 20, True),
    "facebook/dinov3-vit7b16-pretrain-lvd1689m": _published_vit(4096, 8192, 40, 32, True, query_bias=False,
                                                                value_bias=False),
}
# the satellite (SAT-493M) pretrainings have the same configs and shapes as their LVD-1689M twins
PUBLISHED_VITS["facebook/dinov3-vitl16-pretrain-sat493m"] = PUBLISHED_VITS["facebook/dinov3-vitl16-pretrain-lvd1689m"]
PUBLISHED_VITS["facebook/dinov3-vit7b16-pretrain-sat493m"] = PUBLISHED_VITS["facebook/dinov3-vit7b16-pretrain-lvd1689m"]


def _reference(checkpoint: str, image: str, pixels: str | None, cls: tuple[float, ...], patch: tuple[float, ...],
               tolerance: float, source: str) -> PublishedReference:
    config, shapes = PUBLISHED_VITS[checkpoint]
    return PublishedReference(
        checkpoint=checkpoint, config=config, tensor_shapes=shapes, image=image, image_pixel_sha256=pixels,
        slices=(PublishedSlice("pooler_output", (0,), cls),
                PublishedSlice("last_hidden_state", (0, 1 + int(config["num_register_tokens"])), patch)),
        atol=tolerance, rtol=tolerance, source=source)


def _jpg(checkpoint: str, cls: tuple[float, ...], patch: tuple[float, ...]) -> PublishedReference:
    return _reference(checkpoint, COCO_JPG, None, cls, patch, 1e-3, CONVERSION_SOURCE)


VIT_REFERENCES = (
    _reference("facebook/dinov3-vits16-pretrain-lvd1689m", COCO_PNG, COCO_PNG_PIXEL_SHA256,
               (0.4637, -0.4160, 0.4086, -0.1265, -0.2865), (-0.0386, -0.2509, -0.0161, -0.4556, 0.5716),
               1e-4, TEST_SOURCE),
    # The conversion values differ from the test's PNG values by up to 3.6e-4 for ViT-S (e.g. cls[2] 0.408236
    # vs 0.4086), more than the test's 1e-4: they are for another input (the JPEG decode), never to be mixed.
    _jpg("facebook/dinov3-vits16-pretrain-lvd1689m", (0.463561, -0.415609, 0.408236, -0.126613, -0.286636),
         (-0.038754, -0.250895, -0.016392, -0.455473, 0.571582)),
    _jpg("facebook/dinov3-vits16plus-pretrain-lvd1689m", (-0.471349, -1.365778, -0.317983, 0.377219, -0.769085),
         (0.144551, -0.388117, -0.393433, -0.157695, -0.600380)),
    _jpg("facebook/dinov3-vitb16-pretrain-lvd1689m", (1.034643, -0.180609, -0.341018, -0.066376, -0.011383),
         (-0.082523, -0.456272, -0.728029, -0.430680, -0.152880)),
    _jpg("facebook/dinov3-vitl16-pretrain-lvd1689m", (0.484527, -0.582214, 0.480636, 0.592040, 0.945166),
         (-0.211367, -0.490863, -0.257131, 0.101763, 0.154511)),
    _jpg("facebook/dinov3-vith16plus-pretrain-lvd1689m", (-0.064575, -0.148866, -0.621524, 0.634878, 0.152695),
         (-0.093817, 0.287407, -0.050036, 0.428043, 0.094561)),
    _jpg("facebook/dinov3-vit7b16-pretrain-lvd1689m", (0.275439, -0.261353, 0.067772, 0.049936, -0.158747),
         (0.044442, -0.052542, 0.070777, -0.065111, -0.026546)),
    _jpg("facebook/dinov3-vitl16-pretrain-sat493m", (-0.33235, 0.34052, -0.22087, 0.21434, 0.09003),
         (0.18488, 0.30309, -0.20689, 0.12848, 0.06207)),
    _jpg("facebook/dinov3-vit7b16-pretrain-sat493m", (-0.19779, 0.11819, -0.00581, -0.21055, -0.03971),
         (-0.12423, 0.07879, -0.10057, 0.02835, -0.11727)),
)


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
        hidden, heads = config.get("hidden_size", 384), config.get("num_attention_heads", 6)  # DINOv3ViTConfig's
        if hidden % heads:
            raise CheckpointError(
                f"{config_file}: hidden_size {hidden} is not divisible by num_attention_heads {heads}",
                "re-download config.json from the model repository (ViT-B/16: 768 and 12)")
        if (hidden // heads) % 4:  # the 2-D RoPE: head size / 4 frequencies for each of y and x, each rotating 2
            raise CheckpointError(
                f"{config_file}: hidden_size {hidden} / num_attention_heads {heads} gives heads of "
                f"{hidden // heads} channels; DINOv3's 2-D rotary position embedding needs a multiple of 4",
                "re-download config.json from the model repository (ViT-B/16: 768 and 12, heads of 64)")

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
                  "patch_size": 1, "num_register_tokens": 0, "image_size": 1},
    config_values={"num_channels": RGB_CHANNELS, "layer_norm_eps": POSITIVE, "rope_theta": POSITIVE,
                   "layerscale_value": FINITE, "hidden_act": ACTIVATION, "use_gated_mlp": BOOLEAN,
                   "query_bias": BOOLEAN, "key_bias": BOOLEAN, "value_bias": BOOLEAN, "proj_bias": BOOLEAN,
                   "mlp_bias": BOOLEAN},
    layer_scale_suffix="lambda1",
    token_zero="CLS",
    size_mismatch_example="ViT-L/16 weights with a ViT-B/16 config",
    references=VIT_REFERENCES,
)
