"""The input image: a deterministic synthetic one by default, or a user's file.

The synthetic image has structure - gradients, shapes, stripes and fine
texture - so every patch carries signal and attention is not uniform.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from .errors import ImageError
from .hashing import file_sha256

DEFAULT_SIZE = 224
DEFAULT_SEED = 0


def synthetic_image(size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> Image.Image:
    """A deterministic RGB image: colour gradients, random shapes, stripes and noise texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    base = np.stack([x, y, 1.0 - (x + y) / 2], axis=-1)
    stripes = 0.15 * np.sin(2 * np.pi * (6 * x + 3 * y))[..., None]
    pixels = np.clip(base + stripes, 0, 1) * 255
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 10, size // 3, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=colour)
    noise = rng.normal(0, 8, (size, size, 3))
    textured = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(textured)


@dataclass(frozen=True)
class InputImage:
    """The image under test and where it came from."""

    image: Image.Image = field(repr=False)
    source: str
    conversions: tuple[str, ...] = ()
    #: the user's own file (--image): path, sha256 of its bytes, format, size in bytes, width x height
    user_file: dict[str, object] | None = None

    @property
    def pixel_sha256(self) -> str:
        """Hash of the decoded RGB pixels: stable across PNG encoders."""
        return hashlib.sha256(self.image.tobytes()).hexdigest()

    def save(self, folder: Path, name: str = "input_image.png") -> dict[str, object]:
        """Write the image used to ``folder`` and return its record for reports."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        encoded = io.BytesIO()
        self.image.save(encoded, format="PNG")
        data = encoded.getvalue()
        # xdist workers each save the same file: write beside it and rename, so none reads a half-written one
        staging = path.with_name(f".{name}.{os.getpid()}")
        staging.write_bytes(data)
        os.replace(staging, path)
        record: dict[str, object] = {"path": str(path), "file_sha256": hashlib.sha256(data).hexdigest(),
                  "pixel_sha256": self.pixel_sha256, "size": list(self.image.size), "mode": self.image.mode,
                  "source": self.source, "conversions": list(self.conversions)}
        if self.user_file is not None:  # file_sha256 above is the PNG copy's; this is the file the user gave
            record["user_file"] = dict(self.user_file)
        return record


def default_image() -> InputImage:
    return InputImage(synthetic_image(), source=f"synthetic {DEFAULT_SIZE}x{DEFAULT_SIZE}, seed {DEFAULT_SEED}")


def open_image(path: Path) -> InputImage:
    """Read an image file as 8-bit RGB, recording every conversion made.

    Conversions: 16-bit and 32-bit integer grey scaled to 8 bits; transparency
    composited onto white; grey, palette, CMYK and other modes converted to RGB;
    of a multi-frame file (GIF, TIFF) the first frame is used. Resizing to the
    model's input size is the preprocessor's job (recorded by the suite too).
    """
    if path.is_file() and path.stat().st_size == 0:
        raise ImageError(f"image {path} is empty (0 bytes)", "pass --image to an image file that was copied in full")
    try:
        with Image.open(path) as handle:
            frames = getattr(handle, "n_frames", 1)
            handle.load()
            image = handle.copy()
            original: dict[str, object] = {"path": str(path.resolve()), "sha256": file_sha256(path),
                                           "format": handle.format,
                        "size_bytes": path.stat().st_size, "width": handle.width, "height": handle.height,
                        "mode": handle.mode}
    except FileNotFoundError:
        raise ImageError(f"image {path} does not exist", "pass --image to an existing image file") from None
    except IsADirectoryError:
        raise ImageError(f"image {path} is a folder, not an image file",
                         "pass --image to one image file inside it") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"image {path} is too large to open safely ({error})",
                         "pass a smaller image: the model sees it resized to 224x224 anyway") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"image {path} cannot be read as an image ({error})",
                         "pass --image to a PNG, JPEG or other file Pillow can open") from None
    if min(image.size) < 1:
        raise ImageError(f"image {path} has no pixels (size {image.width}x{image.height})",
                         "pass --image to a real picture")
    conversions = [f"first of {frames} frames used"] if frames > 1 else []
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
        # Pillow opens 16-bit PNGs as "I;16" or "I" depending on its version: the values decide
        conversions.append(f"{'16-bit' if peak > 255 else 'integer'} to 8-bit (divided by {peak:g}/255)")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
        conversions.append("alpha composited onto white")
    if image.mode != "RGB":
        conversions.append(f"{image.mode} to RGB")
        image = image.convert("RGB")
    return InputImage(image, source=str(path), conversions=tuple(conversions), user_file=original)
