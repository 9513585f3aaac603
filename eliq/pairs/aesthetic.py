"""Aesthetic degradations: colour, exposure, contrast and composition made worse."""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch

from eliq.pairs.families import image_family, level_values, uniform

CAST_STRENGTH = (0.06, 0.12, 0.2, 0.3, 0.42)
SATURATION = (0.7, 0.5, 0.32, 0.16, 0.0)
EXPOSURE_GAIN = (1.25, 1.5, 1.85, 2.3, 3.0)
SHADOW_CRUSH = (0.08, 0.15, 0.25, 0.35, 0.5)
LOW_CONTRAST = (0.75, 0.55, 0.4, 0.27, 0.15)
HIGH_CONTRAST = (1.35, 1.7, 2.1, 2.6, 3.2)
CROP_KEEP = (0.85, 0.72, 0.6, 0.5, 0.4)
TILT_DEGREES = (2.0, 4.0, 7.0, 11.0, 16.0)


def _coin(generators: Sequence, device: torch.device) -> torch.Tensor:
    """One fair boolean per image: which of a family's two directions it takes."""
    return uniform(generators, device=device) < 0.5


@image_family("colour_cast", "aesthetic", "conventional")
def colour_cast(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """A tint of random hue over the whole image (wrong white balance)."""
    hue = uniform(generators, device=images.device) * 2 * math.pi
    phases = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], device=images.device)
    direction = torch.cos(hue[:, None] - phases[None])  # zero-mean gains over R, G, B
    gain = 1 + level_values(CAST_STRENGTH, severity)[:, None] * direction
    return (images * gain[:, :, None, None]).clamp(0, 1)


@image_family("desaturation", "aesthetic", "conventional")
def desaturation(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Washed-out colour, down to greyscale."""
    return kornia.enhance.adjust_saturation(images, level_values(SATURATION, severity)).clamp(0, 1)


@image_family("exposure", "aesthetic", "conventional")
def exposure(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """Blown highlights (over-exposure) or crushed shadows (under-exposure)."""
    blown = (images * level_values(EXPOSURE_GAIN, severity)[:, None, None, None]).clamp(0, 1)
    crush = level_values(SHADOW_CRUSH, severity)[:, None, None, None]
    crushed = ((images - crush) / (1 - crush)).clamp(0, 1) * (1 - crush / 2)
    over = _coin(generators, images.device)[:, None, None, None]
    return torch.where(over, blown, crushed)


@image_family("contrast", "aesthetic", "conventional")
def contrast(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """Flat, foggy contrast or harsh, clipped contrast around the image's mean."""
    low = _coin(generators, images.device)
    factor = torch.where(
        low, level_values(LOW_CONTRAST, severity), level_values(HIGH_CONTRAST, severity)
    )[:, None, None, None]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + factor * (images - mean)).clamp(0, 1)


@image_family("unbalanced_crop", "aesthetic", "conventional")
def unbalanced_crop(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Crop pushed into a corner so the centred subject is cut, scaled back to size."""
    height, width = images.shape[-2:]
    keep = level_values(CROP_KEEP, severity)
    corner = (uniform(generators, 2, device=images.device) < 0.5).float()
    crop_w, crop_h = keep * (width - 1), keep * (height - 1)
    left = corner[:, 0] * (width - 1 - crop_w)
    top = corner[:, 1] * (height - 1 - crop_h)
    boxes = torch.stack(
        [
            torch.stack([left, top], -1),
            torch.stack([left + crop_w, top], -1),
            torch.stack([left + crop_w, top + crop_h], -1),
            torch.stack([left, top + crop_h], -1),
        ],
        dim=1,
    )
    return kornia.geometry.transform.crop_and_resize(images, boxes, (height, width))


@image_family("tilt", "aesthetic", "conventional")
def tilt(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """A crooked horizon: rotated, then zoomed just enough to leave no empty corners."""
    height, width = images.shape[-2:]
    sign = torch.where(_coin(generators, images.device), 1.0, -1.0)
    degrees = level_values(TILT_DEGREES, severity) * sign
    radians = degrees.abs() * math.pi / 180
    zoom = torch.cos(radians) + torch.sin(radians) * max(width / height, height / width)
    center = torch.tensor([[(width - 1) / 2, (height - 1) / 2]], device=images.device)
    matrix = kornia.geometry.transform.get_rotation_matrix2d(
        center.expand(len(images), 2), degrees, zoom[:, None].repeat(1, 2)
    )
    return kornia.geometry.transform.warp_affine(
        images, matrix, (height, width), padding_mode="reflection"
    )
