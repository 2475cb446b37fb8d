"""What the suite needs to know about one model family, asked in one place.

A family is one transformers ``model_type`` (``dinov3_vit``, ``dinov3_convnext``):
its output shapes from config.json, the input stride sweep resolutions must
respect, the probe points of the layer-wise drift, the invariant between its
outputs, the config sizes checked before a model is built, how its seeded test
checkpoints are built, its display names and its published reference values.
Everything else in the suite asks the family (``acceptance.models.family_for``)
and knows nothing about ViTs or ConvNeXts.

Importing this module (and the family modules) does not import torch: the
report code that names architectures runs in the fleet merge without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..checkpoint_files import Kind
from ..errors import CheckpointError

__all__ = ["COCO_JPG", "COCO_PNG", "COCO_PNG_PIXEL_SHA256", "ModelFamily", "ProbePoint", "PublishedReference",
           "PublishedSlice", "find_module_list", "named_module"]

if TYPE_CHECKING:  # annotations only: the family modules import no torch at import time
    from torch import nn

@dataclass(frozen=True)
class ProbePoint:
    """One place in the network whose output is captured for the layer-wise drift."""

    name: str  # as the checkpoint file names the module, e.g. "layer.7" or "stages.2"
    depth: int  # position in the forward pass: 0 first, then 1, 2, ...
    module: "nn.Module"
    #: True: the output is [batch, tokens, channels], so one token (CLS, pooled) can be picked out;
    #: False: a [batch, channels, height, width] map, which has no tokens and is compared whole
    tokens: bool = True


#: COCO val2017 000000039769 (two cats on a couch) as transformers keeps it for its integration tests
COCO_PNG = "COCO val2017 000000039769 as transformers' tests/fixtures/tests_samples/COCO/000000039769.png (640x480 RGB)"
#: sha256 of that PNG's decoded RGB pixels (``Image.open(p).convert("RGB").tobytes()``); the file itself,
#: 694498 bytes, is git blob a3b5225fc3cef5c492cc109aebe883f24941a156
COCO_PNG_PIXEL_SHA256 = "8050ada414034a490fc2bd6ed13a8d78b7d2ce7d896ba4fcd4651317b9471efe"
#: the same picture as the COCO server's JPEG, which the conversion scripts use; its pixel hash is not known
#: here, so values recorded for it are listed (they are the only ones for most sizes) but never matched
COCO_JPG = "http://images.cocodataset.org/val2017/000000039769.jpg (decoded pixels' sha256 unknown here)"


@dataclass(frozen=True)
class PublishedSlice:
    """``output[index][:len(values)]`` as published, e.g. pooler_output[0, :5]."""

    output: str
    index: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def label(self) -> str:
        return f"{self.output}[{', '.join(map(str, self.index))}, :{len(self.values)}]"


@dataclass(frozen=True)
class PublishedReference:
    """Outputs the publishers of a checkpoint report for one image, and how to recognise the checkpoint.

    The suite never fetches anything: the values, their source and the image's
    pixel hash are recorded here. A checkpoint is recognised by its config.json
    (``config``: fields and values, defaults filled in by transformers) and a few
    tensor shapes in its weight files (``tensor_shapes``: on-disk names).
    """

    checkpoint: str
    config: Mapping[str, Any]
    tensor_shapes: Mapping[str, tuple[int, ...]]
    #: what the image is, and the sha256 of its decoded RGB pixels (None: not known here, never matched)
    image: str
    image_pixel_sha256: str | None
    slices: tuple[PublishedSlice, ...]
    #: |got - expected| <= atol + rtol * |expected| (torch.testing.assert_close's rule)
    atol: float
    rtol: float
    #: where the values come from: repository, path and commit
    source: str
    #: the processor's input size the values are for (the checkpoint's preprocessor_config.json)
    input_size: tuple[int, int] = (224, 224)


def _sizes_problem(value: Any, least: int) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < least


def _kind(least: int) -> str:
    return "a positive integer" if least else "a non-negative integer"


@dataclass(frozen=True)
class ModelFamily:
    """The knowledge about one model type; subclasses fill in the methods that differ."""

    model_type: str
    #: "DINOv3 ViT": in messages and documentation
    title: str
    #: a published checkpoint of this family, for fix lines
    example_checkpoint: str
    #: transformers class names (imported from ``transformers`` when a model is built)
    config_class: str
    model_class: str
    #: the family's reference size (config.json fields over the config class's defaults), for builders
    builtin_config: Mapping[str, Any]
    #: integer sizes in config.json and the least value each may take
    config_sizes: Mapping[str, int]
    #: list-of-integer sizes in config.json and the least value each entry may take
    config_size_lists: Mapping[str, int] = field(default_factory=dict)
    #: other config.json fields that shape the model (numbers, switches, the activation) and their kind of value
    config_values: Mapping[str, Kind] = field(default_factory=dict)
    #: on-disk name ending of the layer-scale parameters, set to ``layer_scale_value`` by the builders
    layer_scale_suffix: str = ""
    #: what token 0 of last_hidden_state is, in messages ("CLS", "pooled")
    token_zero: str = "CLS"
    #: "weights of another size" example for the fix line when tensors do not match the config
    size_mismatch_example: str = ""
    #: the token of last_hidden_state that pooler_output is (None: no such invariant; see consistency_reason)
    pooler_token: int | None = 0
    #: published output values of known checkpoints (checked by tests/acceptance/test_reference.py)
    references: tuple[PublishedReference, ...] = ()

    # --- names --------------------------------------------------------------------------------------------

    def display_name(self, config: Mapping[str, Any]) -> str:
        """"ViT-B/16", "ConvNeXt-T" for the published sizes, else the dimensions that define the model."""
        raise NotImplementedError

    # --- config.json -------------------------------------------------------------------------------------

    def check_config(self, config_file: Path, config: Mapping[str, Any]) -> None:
        """Every field that shapes the model, before one is built: sizes must be integers (a hand-edited "768"
        or 768.0 breaks deep inside torch otherwise), the other values of their kind, then the relations
        between them. A field config.json leaves out keeps transformers' default."""
        for key, least in self.config_sizes.items():
            value = config.get(key)
            if key in config and _sizes_problem(value, least):
                raise CheckpointError(f"{config_file}: {key} must be {_kind(least)}, got {value!r}",
                                      f"re-download config.json from the model repository "
                                      f"(or set {key} to {_kind(least)})")
        for key, least in self.config_size_lists.items():
            value = config.get(key)
            if key in config and not (isinstance(value, list) and value
                                      and not any(_sizes_problem(item, least) for item in value)):
                kind = f"a non-empty list of {_kind(least).replace('a ', '', 1)}s"
                raise CheckpointError(f"{config_file}: {key} must be {kind}, got {value!r}",
                                      f"re-download config.json from the model repository (or set {key} to {kind})")
        for key, value_kind in self.config_values.items():
            if key in config and not value_kind.accepts(config[key]):
                raise CheckpointError(f"{config_file}: {key} must be {value_kind.expected}, got {config[key]!r}",
                                      f"re-download config.json from the model repository "
                                      f"(or set {key} to {value_kind.expected})")
        self.check_config_relations(config_file, config)

    def check_config_relations(self, config_file: Path, config: Mapping[str, Any]) -> None:
        """Checks between sizes (divisibility, equal lengths); the sizes themselves are integers here."""

    # --- shapes ------------------------------------------------------------------------------------------

    def input_stride(self, config: Mapping[str, Any]) -> int:
        """Input height and width must be multiples of this for the token count to be exact."""
        raise NotImplementedError

    def output_shapes(self, config: Mapping[str, Any], batch: int, height: int, width: int) -> dict[str, list[int]]:
        """{output name: expected shape} for a [batch, 3, height, width] input."""
        raise NotImplementedError

    def explain_shape(self, name: str, config: Mapping[str, Any]) -> str:
        """How ``output_shapes`` came about, for a failure message: "[batch, 1 CLS + 4 registers + ...]"."""
        raise NotImplementedError

    def token_count(self, config: Mapping[str, Any], height: int, width: int) -> int:
        return self.output_shapes(config, 1, height, width)["last_hidden_state"][1]

    # --- the invariant between the outputs ---------------------------------------------------------------

    def consistency_reason(self) -> str:
        """Why pooler_output equals that token (or, when pooler_token is None, why nothing is checked)."""
        raise NotImplementedError

    def output_token(self, output_name: str) -> int | None:
        """Which token of the token-shaped probe points an output is made of (None: all of them)."""
        return self.pooler_token if output_name == "pooler_output" else None

    # --- layer-wise probe points -------------------------------------------------------------------------

    def probe_points(self, model: "nn.Module") -> list[ProbePoint]:
        """The probe points in the order the forward pass visits them, named as on disk."""
        raise NotImplementedError

    def probe_shapes(self, config: Mapping[str, Any], batch: int, height: int,
                     width: int) -> dict[str, list[int]]:
        """{probe point name: expected captured shape}, in forward order; the last one is last_hidden_state."""
        raise NotImplementedError

    def describe_probe_points(self, config: Mapping[str, Any]) -> str:
        """"embeddings, the 12 layers of config.json's num_hidden_layers and the final norm"."""
        raise NotImplementedError

    # --- builders ----------------------------------------------------------------------------------------

    def layer_scale_value(self, model_config: Any) -> float:
        """The value the builders give the layer-scale parameters (as initialised for training)."""
        raise NotImplementedError

    def build_model(self, config_overrides: Mapping[str, Any] | None = None) -> Any:  # a transformers PreTrainedModel
        """A freshly initialised model of ``builtin_config`` with ``config_overrides`` applied."""
        import transformers

        config_class = getattr(transformers, self.config_class)
        model_class = getattr(transformers, self.model_class)
        return model_class(config_class(**{**self.builtin_config, **(config_overrides or {})}))


def find_module_list(model: "nn.Module", length: int | None, what: str, model_type: str) -> tuple[str, Any]:
    """(path, ModuleList) of the first ModuleList with ``length`` entries in ``model``.

    transformers 5 moves blocks and stages under a ``model.`` wrapper in memory
    (``layer.N`` -> ``model.layer.N``, ``stages.N`` -> ``model.stages.N``) while the
    checkpoint file keeps the old names: searching by type and length finds
    them in both, and probe points are named as on disk.
    """
    from torch import nn

    for path, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0 and (length is None or len(module) == length):
            return path, module
    raise CheckpointError(f"cannot find the {what} in {type(model).__name__} (no ModuleList with {length} entries)",
                          f"layer-wise diagnosis supports {model_type} models as transformers builds them; "
                          "check the checkpoint's config.json")


def named_module(model: "nn.Module", name: str, model_type: str) -> Any:
    modules = dict(model.named_modules())
    if name not in modules:
        raise CheckpointError(f"{type(model).__name__} has no module named {name}",
                              f"layer-wise diagnosis supports {model_type} models; check the checkpoint's config.json")
    return modules[name]
