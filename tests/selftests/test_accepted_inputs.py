"""Inputs that are unusual but valid: converted as documented, the conversion recorded, the run passes.

Images in other modes and sizes, a checkpoint without preprocessor_config.json,
and pickle weights with --allow-pickle (or DINOV3_ALLOW_PICKLE=1).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from acceptance.errors import ImageError
from acceptance.images import open_image
from acceptance.loading import PICKLE_FILE, WEIGHTS_FILE, inspect_checkpoint, load_model
from acceptance.preprocessing import PREPROCESSOR_FILE
from tests.selftests.conftest import expect_suite


def gradient(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (x * 255 // max(width - 1, 1) + y * 0).astype(np.uint8)


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


# ---- each image mode: what open_image turns it into, and what it records ----

def grayscale(tmp):
    return save(Image.fromarray(gradient(40, 30), "L"), tmp / "grey.png")


def rgba(tmp):
    pixels = np.zeros((30, 40, 4), np.uint8)
    pixels[..., 0] = 200
    pixels[..., 3] = 0  # fully transparent: composited onto white it must come out white
    pixels[:, :20, 3] = 255  # left half opaque red
    return save(Image.fromarray(pixels, "RGBA"), tmp / "rgba.png")


def grey_alpha(tmp):
    return save(Image.fromarray(gradient(40, 30), "L").convert("LA"), tmp / "la.png")


def sixteen_bit(tmp):
    pixels = np.full((30, 40), 65535, np.uint16)
    pixels[:, :20] = 257 * 128  # 16-bit 32896 is 8-bit 128
    return save(Image.fromarray(pixels), tmp / "deep.png")


def palette(tmp):
    return save(Image.fromarray(gradient(40, 30), "L").convert("RGB").convert("P", palette=Image.ADAPTIVE),
                tmp / "palette.png")


def palette_transparent(tmp):
    image = Image.new("P", (40, 30), 1)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    return save(image, tmp / "palette_t.png", transparency=1)


def cmyk(tmp):
    return save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), tmp / "cmyk.jpg", quality=95)


def animated(tmp):
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp / "anim.gif", save_all=True, append_images=frames[1:])
    return tmp / "anim.gif"


def odd_size(tmp):
    return save(Image.fromarray(np.stack([gradient(333, 517)] * 3, axis=-1), "RGB"), tmp / "odd.png")


@pytest.mark.parametrize("build,conversions,pixel", [
    (grayscale, ["L to RGB"], ((39, 0), (255, 255, 255))),
    (rgba, ["alpha composited onto white"], ((30, 5), (255, 255, 255))),
    (grey_alpha, ["alpha composited onto white"], ((39, 0), (255, 255, 255))),
    (sixteen_bit, ["16-bit to 8-bit (divided by 65535/255)", "L to RGB"], ((0, 0), (128, 128, 128))),
    (palette, ["P to RGB"], None),
    (palette_transparent, ["alpha composited onto white"], ((0, 0), (255, 255, 255))),
    (cmyk, ["CMYK to RGB"], None),
    (animated, ["first of 3 frames used", "P to RGB"], ((0, 0), (255, 0, 0))),
    (odd_size, [], None),
], ids=lambda value: value.__name__ if callable(value) else None)
def test_image_modes_become_8bit_rgb_and_say_so(build, conversions, pixel, tmp_path):
    picture = open_image(build(tmp_path))
    assert picture.image.mode == "RGB"
    assert list(picture.conversions) == conversions
    if pixel is not None:
        where, value = pixel
        assert picture.image.getpixel(where) == value
    assert picture.save(tmp_path / "reports")["conversions"] == conversions


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (64, 64)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2 x the limit: Pillow's bomb error
    with pytest.raises(ImageError, match="too large to open safely") as raised:
        open_image(path)
    assert "resized to 224x224 anyway" in raised.value.fix


def test_converted_odd_sized_image_runs_and_is_recorded(run_suite, tiny_checkpoint, tmp_path):
    pixels = np.full((517, 333), 257 * 90, np.uint16)
    image = save(Image.fromarray(pixels), tmp_path / "scan.png")
    result = run_suite("--model-path", str(tiny_checkpoint), "--device", "cpu", "--image", str(image))
    expect_suite(result)
    result.stdout.fnmatch_lines([
        f"*input:  {image} via *",
        "*image conversions: 16-bit to 8-bit (divided by 65535/255); L to RGB; resized 333x517 to 224x224 by the "
        "preprocessor (no crop)*",
    ])
    # provenance (issue 23): the user's file itself, and the copy in this run's folder - not the shared one
    recorded = json.loads((tmp_path / "reports" / "benchmark_report.json").read_text())
    record = recorded["input"]["image"]
    assert record["user_file"] == {"path": str(image.resolve()),
                                   "sha256": hashlib.sha256(image.read_bytes()).hexdigest(),
                                   "format": "PNG", "size_bytes": image.stat().st_size, "width": 333, "height": 517,
                                   "mode": Image.open(image).mode}
    [run_folder] = (tmp_path / "reports" / "runs").iterdir()
    assert record["path"] == str(run_folder / "input_image.png") and Path(record["path"]).is_file()
    assert record["file_sha256"] == hashlib.sha256(Path(record["path"]).read_bytes()).hexdigest()
    assert record["pixel_sha256"] != record["user_file"]["sha256"]


# ---- checkpoints that are valid with a fallback or an explicit permission ----

def test_missing_preprocessor_config_uses_the_documented_defaults(run_suite, tiny_checkpoint, tmp_path):
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint")
    (folder / PREPROCESSOR_FILE).unlink()
    result = run_suite("--model-path", str(folder), "--device", "cpu")
    expect_suite(result)
    result.stdout.fnmatch_lines(["*input:  synthetic 224x224, seed 0 via the documented DINOv3 defaults "
                                 "(preprocessor_config.json missing from the checkpoint: rescale 1/255, resize 224x224 "
                                 "bilinear, ImageNet mean/std)*"])


@pytest.fixture(scope="module")
def pickle_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint with its weights as a pytorch_model.bin (a state dict) instead of safetensors."""
    folder = shutil.copytree(tiny_checkpoint, tmp_path_factory.mktemp("pickle") / "checkpoint")
    torch.save(load_file(folder / WEIGHTS_FILE), folder / PICKLE_FILE)
    (folder / WEIGHTS_FILE).unlink()
    return folder


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_allow_pickle_loads_a_pickle_only_checkpoint_and_says_so(how, run_suite, pickle_checkpoint, monkeypatch):
    args = ["--model-path", str(pickle_checkpoint), "--device", "cpu"]
    if how == "flag":
        args.append("--allow-pickle")
    else:
        monkeypatch.setenv("DINOV3_ALLOW_PICKLE", "1")
    result = run_suite(*args)
    expect_suite(result)
    result.stdout.fnmatch_lines(["*weights read from a pickle (pytorch_model.bin), allowed by --allow-pickle*"])


def test_pickle_and_safetensors_load_the_same_weights(pickle_checkpoint, tiny_checkpoint):
    from_pickle = load_model(inspect_checkpoint(pickle_checkpoint, allow_pickle=True))
    from_safetensors = load_model(inspect_checkpoint(tiny_checkpoint))
    for (name, a), (_, b) in zip(from_pickle.state_dict().items(), from_safetensors.state_dict().items()):
        assert torch.equal(a, b), name
    assert inspect_checkpoint(pickle_checkpoint, allow_pickle=True).provenance()["weights_format"] == "pickle"


def test_allow_pickle_prefers_safetensors_when_both_exist(tiny_checkpoint, tmp_path):
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "both")
    (folder / PICKLE_FILE).write_bytes(b"never read")
    checkpoint = inspect_checkpoint(folder, allow_pickle=True)
    assert checkpoint.weights_format == "safetensors" and checkpoint.weight_files == (folder / WEIGHTS_FILE,)


def test_unsafe_pickle_is_refused_even_when_allowed_and_never_runs(run_suite, tiny_checkpoint, tmp_path):
    """A pytorch_model.bin whose unpickling would run a shell command: refused, and the command never ran."""
    import os

    marker = tmp_path / "code-ran"

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "evil"
    folder.mkdir()
    shutil.copy(tiny_checkpoint / "config.json", folder / "config.json")
    torch.save({"embeddings.cls_token": RunsCode()}, folder / PICKLE_FILE)
    result = run_suite("--model-path", str(folder), "--device", "cpu", "--allow-pickle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *pytorch_model.bin holds more than tensors: unpickling it would call "
                                 "*system - refused even with --allow-pickle",
                                 "*fix: use the model.safetensors published with the model*"])
    assert not marker.exists()
    torch.load(folder / PICKLE_FILE, weights_only=False)  # what an unguarded loader would do
    assert marker.exists(), "the payload is live: the refusal above is what kept it from running"
