"""Conventional technical degradations: compression, noise, blur, resampling, banding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F

from eliq.pairs.families import image_family, level_values, normal, per_level, uniform

JPEG_QUALITY = (55, 35, 22, 12, 6)
JPEG_ROUNDS = (1, 2, 2, 3, 3)
NOISE_SIGMA = (0.02, 0.04, 0.07, 0.11, 0.16)
PHOTONS_AT_WHITE = (300.0, 100.0, 40.0, 15.0, 6.0)
BLUR_SIGMA = (0.7, 1.3, 2.2, 3.3, 5.0)
MOTION_LENGTH = (5, 9, 15, 23, 33)
RESAMPLE_SCALE = (0.6, 0.42, 0.3, 0.2, 0.13)
QUANTISATION_LEVELS = (40, 24, 14, 8, 5)


@image_family("jpeg", "technical", "conventional")
def jpeg(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """Repeated JPEG compression at falling quality (blocking, ringing, colour bleeding)."""
    quality = level_values(JPEG_QUALITY, severity)
    rounds = level_values(JPEG_ROUNDS, severity).long()
    out = images
    for round_index in range(int(rounds.max())):
        active = rounds > round_index
        coded = kornia.enhance.jpeg_codec_differentiable(out, quality)
        out = torch.where(active[:, None, None, None], coded, out)
    return out.clamp(0, 1)


@image_family("gaussian_noise", "technical", "conventional")
def gaussian_noise(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Additive white Gaussian noise, independent per channel."""
    sigma = level_values(NOISE_SIGMA, severity)[:, None, None, None]
    noise = normal(generators, *images.shape[1:], device=images.device)
    return (images + sigma * noise).clamp(0, 1)


@image_family("poisson_noise", "technical", "conventional")
def poisson_noise(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Shot noise of a sensor that caught fewer photons: stronger in bright areas."""
    photons = level_values(PHOTONS_AT_WHITE, severity)[:, None, None, None]
    rate = (images * photons).cpu()  # drawn on the CPU generators: the same on any device
    counts = torch.stack(
        [torch.poisson(r, generator=g) for r, g in zip(rate, generators, strict=True)]
    )
    counts = counts.to(images.device)
    return (counts / photons).clamp(0, 1)


@image_family("gaussian_blur", "technical", "conventional")
def gaussian_blur(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Isotropic Gaussian blur (defocus)."""

    def blur(batch: torch.Tensor, level: int, index: list[int]) -> torch.Tensor:
        sigma = BLUR_SIGMA[level - 1]
        size = 2 * math.ceil(3 * sigma) + 1
        return kornia.filters.gaussian_blur2d(batch, (size, size), (sigma, sigma))

    return per_level(images, severity, blur).clamp(0, 1)


@image_family("motion_blur", "technical", "conventional")
def motion_blur(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """Linear motion blur in a random direction (camera shake)."""
    angle = uniform(generators, device=images.device) * 180.0

    def blur(batch: torch.Tensor, level: int, index: list[int]) -> torch.Tensor:
        length = MOTION_LENGTH[level - 1]
        return kornia.filters.motion_blur(
            batch, length, angle[index], torch.zeros_like(angle[index]), mode="bilinear"
        )

    return per_level(images, severity, blur).clamp(0, 1)


@image_family("down_up_sampling", "technical", "conventional")
def down_up_sampling(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Downscale then upscale back: the soft, detail-less look of an upscaled render."""
    height, width = images.shape[-2:]

    def resample(batch: torch.Tensor, level: int, index: list[int]) -> torch.Tensor:
        scale = RESAMPLE_SCALE[level - 1]
        small_size = (max(2, round(height * scale)), max(2, round(width * scale)))
        small = F.interpolate(batch, size=small_size, mode="bilinear", antialias=True)
        return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)

    return per_level(images, severity, resample).clamp(0, 1)


@image_family("quantisation", "technical", "conventional")
def quantisation(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Too few grey levels per channel: banding in smooth gradients such as skies."""
    steps = level_values(QUANTISATION_LEVELS, severity)[:, None, None, None] - 1
    return torch.round(images * steps) / steps
