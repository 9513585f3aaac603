"""Procedural stand-ins for generation artifacts, used when no generator is at hand.

They imitate what diffusion and GAN outputs get wrong: waxy over-smoothed texture, locally
warped geometry, checkerboard patterns from strided upsampling, and patches whose texture
and colour do not agree with their surroundings.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F

from eliq.pairs.families import image_family, level_values, normal, per_level, uniform

SMOOTHING_RADIUS = (2, 3, 4, 6, 8)
SMOOTHING_EPS = (2e-4, 6e-4, 1.5e-3, 4e-3, 1e-2)
WARP_STRENGTH = (0.5, 1.0, 1.7, 2.6, 4.0)
CHECKER_FACTOR = (2, 2, 2, 4, 4)
CHECKER_MIX = (0.35, 0.6, 0.85, 0.75, 1.0)
PATCH_COUNT = (1, 2, 3, 5, 7)
PATCH_FRACTION = 0.18


@image_family("plastic_texture", "technical", "ai_specific")
def plastic_texture(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Edge-preserving over-smoothing: the waxy, texture-less 'plastic' look."""

    def smooth(batch: torch.Tensor, level: int, index: list[int]) -> torch.Tensor:
        size = 2 * SMOOTHING_RADIUS[level - 1] + 1
        return kornia.filters.guided_blur(batch, batch, (size, size), SMOOTHING_EPS[level - 1])

    return per_level(images, severity, smooth).clamp(0, 1)


@image_family("local_warp", "technical", "ai_specific")
def local_warp(images: torch.Tensor, severity: torch.Tensor, generators: Sequence) -> torch.Tensor:
    """Smooth random displacement field: bent lines and melted local geometry."""
    height, width = images.shape[-2:]
    field = normal(generators, 2, height // 8, width // 8, device=images.device)
    field = kornia.filters.gaussian_blur2d(field, (9, 9), (2.0, 2.0), border_type="replicate")
    field = F.interpolate(field, size=(height, width), mode="bicubic", align_corners=False)
    strength = level_values(WARP_STRENGTH, severity)[:, None, None, None]
    # displacement in pixels -> normalised grid units
    scale = torch.tensor([2.0 / width, 2.0 / height], device=images.device)[None, :, None, None]
    displacement = (field * strength * 4.0 * scale).permute(0, 2, 3, 1)
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, height, device=images.device),
        torch.linspace(-1, 1, width, device=images.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys], dim=-1)[None] + displacement
    return F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=True
    )


@image_family("checkerboard", "technical", "ai_specific")
def checkerboard(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Uneven overlap of a strided transposed convolution: the classic upsampling grid."""
    height, width = images.shape[-2:]

    def upsample(batch: torch.Tensor, level: int, index: list[int]) -> torch.Tensor:
        factor = CHECKER_FACTOR[level - 1]
        kernel = factor + factor // 2 + 1  # not a multiple of the stride: uneven overlap
        padded = F.pad(batch, (0, (-width) % factor, 0, (-height) % factor), mode="replicate")
        small = F.avg_pool2d(padded, factor)
        weight = torch.full((3, 1, kernel, kernel), factor**2 / kernel**2, device=batch.device)
        up = F.conv_transpose2d(small, weight, stride=factor, groups=3)[..., :height, :width]
        mix = CHECKER_MIX[level - 1]
        return (1 - mix) * batch + mix * up

    return per_level(images, severity, upsample).clamp(0, 1)


@image_family("inconsistent_patches", "technical", "ai_specific")
def inconsistent_patches(
    images: torch.Tensor, severity: torch.Tensor, generators: Sequence
) -> torch.Tensor:
    """Soft-edged patches re-rendered with another region's texture and a shifted tone."""
    batch, _, height, width = images.shape
    side = max(8, round(PATCH_FRACTION * min(height, width)))
    ramp = torch.linspace(-1, 1, side, device=images.device).abs()
    feather = 1 - ramp.clamp(min=0.6).sub(0.6).div(0.4)  # flat centre, soft border
    mask = (feather[:, None] * feather[None, :])[None]
    draws = uniform(generators, max(PATCH_COUNT), 7, device=images.device)
    out = images.clone()
    for b in range(batch):
        for p in range(PATCH_COUNT[int(severity[b]) - 1]):
            ty, tx, sy, sx, r, g, bl = draws[b, p].tolist()
            top, left = int(ty * (height - side)), int(tx * (width - side))
            src_top, src_left = int(sy * (height - side)), int(sx * (width - side))
            source = images[b, :, src_top : src_top + side, src_left : src_left + side]
            tone = 1 + 0.3 * (torch.tensor([r, g, bl], device=images.device) - 0.5)
            target = out[b, :, top : top + side, left : left + side]
            patch = (source * tone[:, None, None]).clamp(0, 1)
            out[b, :, top : top + side, left : left + side] = target * (1 - mask) + patch * mask
    return out
