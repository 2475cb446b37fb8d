"""Checkpoints written with save_pretrained and read back through the real from_pretrained path."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from acceptance.builtin import (
    MARKER_FILE,
    builtin_checkpoint,
    write_checkpoint,
)
from acceptance.errors import CheckpointError
from acceptance.images import default_image, synthetic_image
from acceptance.loading import inspect_checkpoint, load_model
from acceptance.models.vit import VITB16_CONFIG
from acceptance.preprocessing import dinov3_pipeline, load_preprocessor
from tests.selftests.conftest import TINY_CONFIG, TINY_CONVNEXT_CONFIG

#: the built-in ViT-B/16's model.safetensors (seed 0, WEIGHTS_FORMAT w2)
BUILTIN_WEIGHTS_SHA256 = "387366dd959b9ca6f2eca7452fb258ac4da52f20a7bfc172fdffd1791116b449"


def test_tiny_checkpoint_round_trips_through_from_pretrained(tiny_checkpoint):
    checkpoint = inspect_checkpoint(tiny_checkpoint)
    assert checkpoint.architecture_only and checkpoint.model_type == "dinov3_vit"
    model = load_model(checkpoint, "float32")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert model.config.hidden_size == TINY_CONFIG["hidden_size"]
    parameters = dict(model.named_parameters())  # v5 nests layers under model.model
    norm1 = next(value for name, value in parameters.items() if name.endswith("layer.0.norm1.weight"))
    assert torch.all(norm1 == 1.0)
    assert model.embeddings.patch_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_loading_in_bfloat16(tiny_checkpoint):
    model = load_model(inspect_checkpoint(tiny_checkpoint), "bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_seeded_weights_are_deterministic_and_seed_dependent(tmp_path):
    first = write_checkpoint(tmp_path / "a", TINY_CONFIG, seed=7)
    again = write_checkpoint(tmp_path / "b", TINY_CONFIG, seed=7)
    other = write_checkpoint(tmp_path / "c", TINY_CONFIG, seed=8)
    sha = {name: inspect_checkpoint(path).provenance()["weights_sha256"]["model.safetensors"]
           for name, path in (("first", first), ("again", again), ("other", other))}
    assert sha["first"] == sha["again"] != sha["other"]


def test_token_count_follows_the_config(tiny_gated_checkpoint):
    checkpoint = inspect_checkpoint(tiny_gated_checkpoint)
    assert checkpoint.token_count(224, 224) == 1 + 2 + 196
    assert checkpoint.token_count(448, 224) == 1 + 2 + 392


def test_builtin_is_the_official_vitb16_architecture(tmp_path):
    folder = builtin_checkpoint(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    for key, value in VITB16_CONFIG.items():
        assert config[key] == value, key
    assert (folder / MARKER_FILE).is_file()
    assert builtin_checkpoint(tmp_path) == folder  # reused, not rebuilt
    assert inspect_checkpoint(folder).token_count(224, 224) == 201
    # the seeded weights are the same on every host and transformers version (fleet reports compare them)
    assert inspect_checkpoint(folder).provenance()["weights_sha256"]["model.safetensors"] == BUILTIN_WEIGHTS_SHA256


def test_a_real_checkpoint_is_not_architecture_only(tiny_checkpoint, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tiny_checkpoint.iterdir():
        if path.name != MARKER_FILE:
            (copy / path.name).write_bytes(path.read_bytes())
    assert not inspect_checkpoint(copy).architecture_only


def test_lfs_pointer_is_detected(tiny_checkpoint, tmp_path):
    folder = tmp_path / "lfs"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    (folder / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 343000000\n")
    with pytest.raises(CheckpointError, match="Git LFS pointer") as raised:
        inspect_checkpoint(folder)
    assert "git lfs pull" in str(raised.value)


def test_synthetic_image_is_deterministic_and_structured():
    a, b = synthetic_image(), synthetic_image()
    assert a.size == (224, 224) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    assert synthetic_image(seed=1).tobytes() != a.tobytes()
    pixels = torch.from_numpy(np.asarray(a, dtype=np.float32).reshape(-1, 3))
    assert pixels.std(0).min() > 30  # not flat: gradients, shapes and texture in every channel


def test_image_is_saved_with_its_hashes(tmp_path):
    record = default_image().save(tmp_path)
    assert (tmp_path / "input_image.png").is_file()
    assert len(record["file_sha256"]) == 64 and len(record["pixel_sha256"]) == 64
    assert Image.open(tmp_path / "input_image.png").tobytes() == default_image().image.tobytes()


def test_builtin_pipeline_steps(tiny_checkpoint):
    settings = json.loads((tiny_checkpoint / "preprocessor_config.json").read_text())
    flat = Image.new("RGB", (300, 200), (255, 128, 0))
    pixels = dinov3_pipeline(settings)(flat)
    assert pixels.shape == (1, 3, 224, 224)
    expected = [(1.0 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0.0 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        assert pixels[0, channel].mean().item() == pytest.approx(value, abs=1e-5)


def test_the_checkpoints_own_processor_and_the_builtin_pipeline_agree(tiny_checkpoint):
    pytest.importorskip("torchvision", reason="the checkpoint's own processor (DINOv3ViTImageProcessorFast) "
                                              "needs torchvision; CI runs this in its torchvision environment")
    processor = load_preprocessor(tiny_checkpoint)
    assert processor.description.startswith("DINOv3ViTImageProcessor")  # "Fast" in 4.x, plain name in 5.x
    image = synthetic_image(size=333)
    ours = dinov3_pipeline(processor.settings)(image)
    torch.testing.assert_close(processor(image), ours, rtol=0, atol=1e-5)


def test_missing_preprocessor_config_falls_back_to_documented_defaults(tiny_checkpoint, tmp_path):
    folder = tmp_path / "nopre"
    folder.mkdir()
    for path in tiny_checkpoint.iterdir():
        if path.name != "preprocessor_config.json":
            (folder / path.name).write_bytes(path.read_bytes())
    processor = load_preprocessor(folder)
    assert "preprocessor_config.json missing" in processor.description
    assert processor(synthetic_image()).shape == (1, 3, 224, 224)


# --- dinov3_convnext -------------------------------------------------------------------------------------

def test_tiny_convnext_round_trips_with_norms_found_by_type(tiny_convnext_checkpoint):
    """The downsampling norms (downsample_layers.N, no "norm" in the name) are LayerNorms: weight 1, bias 0;
    the layer scales (gamma) are config.layer_scale_init_value, as transformers initialises them."""
    checkpoint = inspect_checkpoint(tiny_convnext_checkpoint)
    assert checkpoint.model_type == "dinov3_convnext" and checkpoint.architecture_only
    assert checkpoint.output_shapes(1, 224, 224) == {"last_hidden_state": [1, 50, 64], "pooler_output": [1, 64]}
    assert checkpoint.input_stride == 32 and checkpoint.token_count(448, 224) == 1 + 14 * 7
    model = load_model(checkpoint, "float32")
    parameters = {name.replace("model.", "", 1): value for name, value in model.named_parameters()}
    for name in ("stages.0.downsample_layers.1", "stages.2.downsample_layers.0", "stages.3.layers.0.layer_norm",
                 "layer_norm"):
        assert torch.all(parameters[f"{name}.weight"] == 1.0) and torch.all(parameters[f"{name}.bias"] == 0.0), name
    assert torch.all(parameters["stages.1.layers.0.gamma"] == torch.tensor(model.config.layer_scale_init_value))
    assert parameters["stages.0.downsample_layers.0.weight"].std().item() == pytest.approx(0.02, rel=0.2)
    assert model.config.hidden_sizes == TINY_CONVNEXT_CONFIG["hidden_sizes"]


@pytest.mark.parametrize("change,problem", [
    ({"hidden_sizes": [16, 32, "48", 64]}, "hidden_sizes must be a non-empty list of positive integers, got"),
    ({"depths": []}, "depths must be a non-empty list of positive integers, got []"),
    ({"depths": [1, 1, 2]}, "hidden_sizes has 4 stages but depths 3"),
])
def test_convnext_config_sizes_are_checked(tiny_convnext_checkpoint, tmp_path, change, problem):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tiny_convnext_checkpoint.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError) as raised:
        inspect_checkpoint(copy)
    assert problem in raised.value.problem and "re-download config.json" in raised.value.fix


def test_unknown_model_type_names_every_family(tiny_convnext_checkpoint, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in tiny_convnext_checkpoint.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "model_type": "convnextv2"}))
    with pytest.raises(CheckpointError) as raised:
        inspect_checkpoint(copy)
    assert "this suite validates dinov3_convnext, dinov3_vit" in raised.value.problem
    assert "facebook/dinov3-convnext-tiny-pretrain-lvd1689m" in raised.value.fix
