"""Reading and writing images at the edges: PIL in, float tensors out.

Every odd input a user's folder can hold is either converted in a documented way or
refused with an :class:`ImageLoadError` naming the file, so one bad file never stops a run:

* palette, greyscale, bilevel, YCbCr, LAB and HSV images are converted to RGB;
* transparency (RGBA, LA, PA, palette with a transparent index) is composited on white;
* CMYK and other images with an embedded ICC profile are converted to sRGB through it;
* 16- and 32-bit integer and float images are rescaled from their full range to [0, 1];
* animated images (GIF, APNG, WebP, multi-page TIFF) contribute their first frame;
* the EXIF orientation tag is applied;
* before decoding, images with more than ``max_pixels``, whose decoded pixels would take
  more than ``max_decoded_mb`` (bit depth counted), or longer than ``max_aspect_ratio``
  times their width, are refused (decompression bombs, strips that explode into views);
* JPEGs are decoded at a reduced scale when far larger than ``max_side`` (``draft``), and
  high-bit-depth images are rescaled in slices, so memory stays near the decoded size;
* truncated or corrupt files, and files that are not images, are refused.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from eliq.config import ImageLimits

log = logging.getLogger(__name__)

ImageSource = str | Path | bytes | BinaryIO


class ImageLoadError(ValueError):
    """An input image that cannot be used; ``source`` names it, the message says why."""

    def __init__(self, source: object, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def load_image(source: ImageSource, limits: ImageLimits | None = None) -> torch.Tensor:
    """Decode ``source`` to a float32 ``(3, H, W)`` tensor in [0, 1] (see module notes)."""
    limits = limits or ImageLimits()
    name = source if isinstance(source, str | Path) else "<bytes>"
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                check_geometry(name, img.width, img.height, limits)
                decoded_mb = img.width * img.height * _bytes_per_pixel(img.mode) / 2**20
                if decoded_mb > limits.max_decoded_mb:
                    raise ImageLoadError(
                        name,
                        f"{img.width}x{img.height} {img.mode} would take {decoded_mb:.0f} MB "
                        f"decoded, over the limit of {limits.max_decoded_mb:g} MB",
                    )
                if getattr(img, "n_frames", 1) > 1:
                    log.debug("%s: animated, using its first frame", name)
                    img.seek(0)
                if img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that suffices
                    img.draft(img.mode, (2 * limits.max_side, 2 * limits.max_side))
                img.load()
                picture = _to_rgb(ImageOps.exif_transpose(img))
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(name, f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(name, "not an image, or a format PIL cannot read") from exc
    except FileNotFoundError as exc:
        raise ImageLoadError(name, "file not found") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(name, f"corrupt or truncated image ({exc})") from exc
    return from_pil(_limit_side(picture, limits.max_side))


def check_geometry(source: object, width: int, height: int, limits: ImageLimits) -> None:
    """Refuse an image whose size alone makes it unsafe to decode or to view."""
    if width < 1 or height < 1:
        raise ImageLoadError(source, f"{width}x{height} pixels: empty image")
    if width * height > limits.max_pixels:
        raise ImageLoadError(
            source,
            f"{width}x{height} pixels exceeds the limit of {limits.max_pixels} "
            "(possible decompression bomb)",
        )
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        raise ImageLoadError(
            source,
            f"{width}x{height} pixels: aspect ratio {ratio:.0f}:1 exceeds the limit of "
            f"{limits.max_aspect_ratio:g}:1",
        )


def _bytes_per_pixel(mode: str) -> int:
    """What PIL holds per decoded pixel: 8-bit multi-band modes take 4 bytes, as it stores
    them; 16-bit modes 2; 32-bit integer and float 4."""
    if mode.startswith("I;16"):
        return 2
    if mode in {"1", "L", "P"}:
        return 1
    return 4


def from_pil(image: Image.Image) -> torch.Tensor:
    """An 8-bit PIL image as a float32 ``(3, H, W)`` tensor in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def from_array(array: np.ndarray) -> torch.Tensor:
    """A numpy image, ``(H, W)`` or ``(H, W, 3|4)`` (alpha dropped), 8-bit, 16-bit or
    float in [0, 1], as a float32 ``(3, H, W)`` tensor in [0, 1]."""
    if array.ndim == 2:
        array = array[..., None].repeat(3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a numpy image is (H, W) or (H, W, 3|4), not {array.shape}")
    check_geometry("<array>", array.shape[1], array.shape[0], ImageLimits())
    array = array[..., :3]
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ValueError("a float numpy image must be finite and in [0, 1]")
    else:
        raise ValueError(f"a numpy image is uint8, uint16 or float, not {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1).contiguous()


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, or L for a greyscale image (converted after downscaling: a third of the work)."""
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        return _high_bit_depth_to_grey(img)
    if img.info.get("icc_profile") and img.mode in {"RGB", "CMYK"}:
        img = _icc_to_srgb(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("L") if img.mode in {"1", "L"} else img.convert("RGB")


def _high_bit_depth_to_grey(img: Image.Image, rows: int = 512) -> Image.Image:
    """Rescale a 16/32-bit or float single-channel image over its type's range to 8 bits,
    ``rows`` at a time, so memory stays near the decoded image's own."""
    values = np.asarray(img)
    if img.mode == "F":
        top = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    elif img.mode.startswith("I;16") or values.max(initial=0) > 255:
        top = 65535.0
    else:
        top = 255.0
    grey = np.empty(values.shape, dtype=np.uint8)
    for start in range(0, values.shape[0], rows):
        block = values[start : start + rows].astype(np.float32) * np.float32(255.0 / top)
        grey[start : start + rows] = np.clip(block + 0.5, 0, 255)
    return Image.fromarray(grey, mode="L")


def _icc_to_srgb(img: Image.Image) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        return ImageCms.profileToProfile(
            img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError):
        log.debug("unusable ICC profile; converting %s to RGB directly", img.mode)
        return img.convert("RGB")


def _limit_side(img: Image.Image, max_side: int) -> Image.Image:
    if max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def to_pil(image: torch.Tensor) -> Image.Image:
    """A ``(3, H, W)`` tensor in [0, 1] as an 8-bit RGB PIL image."""
    array = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def save_image(image: torch.Tensor, path: Path, image_format: str = "png") -> None:
    """Write a tensor losslessly; negatives must differ from positives only by their edit."""
    pil = to_pil(image)
    if image_format == "png":
        pil.save(path, format="PNG", compress_level=1)
    elif image_format == "webp":
        pil.save(path, format="WEBP", lossless=True, method=0)
    else:
        raise ValueError(f"unsupported image format {image_format!r}")
