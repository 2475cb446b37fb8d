"""Published reference values: recognising a checkpoint and its image, and the check's messages."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from acceptance.builtin import MARKER_FILE
from acceptance.images import default_image
from acceptance.loading import inspect_checkpoint, load_model
from acceptance.models import PublishedReference, PublishedSlice, families, known_family
from acceptance.models.base import COCO_PNG_PIXEL_SHA256
from acceptance.models.convnext import PUBLISHED_CONVNEXTS
from acceptance.models.vit import PUBLISHED_VITS
from acceptance.outputs import forward
from acceptance.preprocessing import load_preprocessor
from acceptance.reference import compare_with_published, plan_reference_check, recognise

SOURCE = "tests/selftests/test_reference_library.py (values computed from the tiny model)"


def real_copy(checkpoint_path, tmp_path):
    """The tiny checkpoint without its built-here marker: it reads as a real checkpoint."""
    folder = tmp_path / "published"
    shutil.copytree(checkpoint_path, folder)
    (folder / MARKER_FILE).unlink()
    return folder


def tiny_reference(checkpoint, outputs, pixel_sha256, **changes) -> PublishedReference:
    """A 'published' reference for the tiny model, with its own outputs as the published values."""
    registers = int(checkpoint.config.get("num_register_tokens", 0))
    reference = PublishedReference(
        checkpoint="selftest/dinov3-tiny", config={"hidden_size": 64, "num_hidden_layers": 2},
        tensor_shapes={"embeddings.patch_embeddings.weight": (64, 3, 16, 16), "norm.weight": (64,)},
        image="the default synthetic image", image_pixel_sha256=pixel_sha256,
        slices=(PublishedSlice("pooler_output", (0,), tuple(outputs["pooler_output"][0, :5].tolist())),
                PublishedSlice("last_hidden_state", (0, 1 + registers),
                               tuple(outputs["last_hidden_state"][0, 1 + registers, :5].tolist()))),
        atol=1e-4, rtol=1e-4, source=SOURCE)
    return dataclasses.replace(reference, **changes)


@pytest.fixture(scope="module")
def published(tiny_checkpoint, tmp_path_factory):
    """(checkpoint, CPU float32 outputs, pixel_values, image) for a tiny 'published' checkpoint."""
    checkpoint = inspect_checkpoint(real_copy(tiny_checkpoint, tmp_path_factory.mktemp("ref")))
    image = default_image()
    pixel_values = load_preprocessor(checkpoint.path)(image.image)
    outputs = forward(load_model(checkpoint, "float32", "cpu"), pixel_values)
    return checkpoint, outputs, pixel_values, image


def test_recognised_checkpoint_and_image_pass(published):
    checkpoint, outputs, pixel_values, image = published
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    plan = plan_reference_check(checkpoint, image.pixel_sha256, (reference,))
    assert plan.reference == reference, plan.reason
    assert compare_with_published(outputs, pixel_values.shape, reference) == []


def test_one_perturbed_value_fails_with_every_fact(published):
    checkpoint, outputs, pixel_values, image = published
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    values = list(reference.slices[0].values)
    got = values[2]
    values[2] += 0.01
    perturbed = dataclasses.replace(reference, slices=(dataclasses.replace(reference.slices[0], values=tuple(values)),
                                                       reference.slices[1]))
    [problem] = compare_with_published(outputs, pixel_values.shape, perturbed)
    assert problem.startswith("selftest/dinov3-tiny: CPU float32 pooler_output[0, 2] is ")
    assert f"is {got:.6g}, published {values[2]:.6g}" in problem
    assert "allowed 0.0001 + 0.0001*|expected|" in problem and f"source {SOURCE}" in problem


def test_nan_never_passes(published):
    checkpoint, outputs, pixel_values, image = published
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    broken = dict(outputs, pooler_output=torch.full_like(outputs["pooler_output"], float("nan")))
    assert len(compare_with_published(broken, pixel_values.shape, reference)) == 5


def test_another_input_size_is_named(published):
    checkpoint, outputs, _, image = published
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    [problem] = compare_with_published(outputs, (1, 3, 448, 448), reference)
    assert "published outputs are for a 224x224 input, the preprocessor made 448x448" in problem


def test_skip_reasons_say_what_is_missing(published, tiny_checkpoint):
    checkpoint, outputs, _, image = published
    reference = tiny_reference(checkpoint, outputs, image.pixel_sha256)
    built_here = plan_reference_check(inspect_checkpoint(tiny_checkpoint), image.pixel_sha256, (reference,))
    assert built_here.reference is None and "seeded random weights" in built_here.reason
    other_size = plan_reference_check(checkpoint, image.pixel_sha256,
                                      (dataclasses.replace(reference, config={"hidden_size": 384}),))
    assert other_size.reference is None and other_size.reason.startswith("checkpoint not recognised")
    assert "selftest/dinov3-tiny" in other_size.reason
    other_shapes = plan_reference_check(checkpoint, image.pixel_sha256, (dataclasses.replace(
        reference, tensor_shapes={"norm.weight": (65,)}),))
    assert other_shapes.reference is None and other_shapes.reason.startswith("checkpoint not recognised")
    png = plan_reference_check(checkpoint, "0" * 64, (dataclasses.replace(
        reference, image_pixel_sha256=COCO_PNG_PIXEL_SHA256),))
    assert png.reference is None and png.reason.startswith("image not recognised: checkpoint recognised as "
                                                           "selftest/dinov3-tiny")
    assert f"pass --image with that image (decoded RGB pixels sha256 {COCO_PNG_PIXEL_SHA256})" in png.reason
    jpg = plan_reference_check(checkpoint, image.pixel_sha256, (dataclasses.replace(reference,
                                                                                    image_pixel_sha256=None),))
    assert jpg.reference is None and "cannot be matched" in jpg.reason


# --- the recorded tables ---------------------------------------------------------------------------------

def meta_shapes(family, config):
    with torch.device("meta"):
        model = family.build_model(config)
    return {name[len("model."):] if name.startswith("model.") else name: tuple(tensor.shape)
            for name, tensor in model.state_dict().items()}, model.config.to_dict()


@pytest.mark.parametrize("family", families(), ids=lambda family: family.model_type)
def test_every_recorded_reference_recognises_its_own_architecture(family):
    """Each entry's config and tensor shapes are those a model of that config has (names as on disk)."""
    assert family.references, f"{family.model_type} records no published values"
    for reference in family.references:
        config = {key: value for key, value in reference.config.items()}
        shapes, full = meta_shapes(family, config)
        assert reference in recognise(full, shapes, family.references), reference.checkpoint
        assert reference.source and reference.atol > 0 and all(len(s.values) == 5 for s in reference.slices)
        assert family.display_name(full) != ""


def test_published_sizes_have_their_display_names():
    vits = {name: meta_config for name, (meta_config, _) in PUBLISHED_VITS.items()}
    names = {name: known_family("dinov3_vit").display_name(config) for name, config in vits.items()}
    assert names["facebook/dinov3-vits16plus-pretrain-lvd1689m"] == "ViT-S+/16"
    assert names["facebook/dinov3-vit7b16-pretrain-sat493m"] == "ViT-7B/16"
    convnexts = {name: known_family("dinov3_convnext").display_name({"hidden_sizes": h, "depths": d})
                 for name, (h, d) in PUBLISHED_CONVNEXTS.items()}
    assert list(convnexts.values()) == ["ConvNeXt-T", "ConvNeXt-S", "ConvNeXt-B", "ConvNeXt-L"]


def test_only_the_png_entries_can_match_an_image():
    """The JPEG's pixel hash is unknown here: its values are recorded, never matched."""
    for family in families():
        for reference in family.references:
            if reference.image_pixel_sha256 is not None:
                assert reference.image_pixel_sha256 == COCO_PNG_PIXEL_SHA256 and reference.atol == 1e-4
            else:
                assert "000000039769.jpg" in reference.image and reference.atol == 1e-3


def write_reference(path, reference: PublishedReference) -> str:
    """A reference as the known_reference plugin reads it."""
    data = dataclasses.asdict(reference)
    data["slices"] = [dataclasses.asdict(item) for item in reference.slices]
    path.write_text(json.dumps(data))
    return str(path)
