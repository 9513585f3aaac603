"""What the vision backbone sees: native-resolution crops plus one global view.

Technical quality lives in full-resolution detail (noise, blur, compression), so squeezing a
whole image to 224 px throws it away; composition and content need the whole frame. Each
image therefore yields ``crops`` crops of ``size`` x ``size`` pixels at native resolution,
spread evenly over the image on a grid, plus the whole image resized to ``size`` (with
antialiasing). Images smaller than a crop are upscaled just enough to hold one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def crop_origins(height: int, width: int, size: int, crops: int) -> list[tuple[int, int]]:
    """Top-left corners of ``crops`` crops spread evenly over a ``height`` x ``width`` image."""
    rows = max(1, round(math.sqrt(crops * height / width)))
    cols = max(1, math.ceil(crops / rows))
    ys = [round(i * (height - size) / max(1, rows - 1)) for i in range(rows)]
    xs = [round(j * (width - size) / max(1, cols - 1)) for j in range(cols)]
    grid = [(y, x) for y in ys for x in xs]
    if len(grid) > crops:  # keep an even spread when the grid has spare cells
        step = len(grid) / crops
        grid = [grid[int(i * step)] for i in range(crops)]
    return grid


def make_views(image: torch.Tensor, size: int = 224, crops: int = 4) -> torch.Tensor:
    """``(1 + crops, 3, size, size)``: the global view first, then the native crops."""
    _, height, width = image.shape
    if min(height, width) < size:
        scale = size / min(height, width)
        height, width = math.ceil(height * scale), math.ceil(width * scale)
        image = F.interpolate(image[None], size=(height, width), mode="bilinear")[0]
    patches = [
        image[:, y : y + size, x : x + size] for y, x in crop_origins(height, width, size, crops)
    ]
    return torch.stack([global_view(image, size), *patches]).clamp(0, 1)


def global_view(image: torch.Tensor, size: int = 224) -> torch.Tensor:
    """``(3, size, size)``: the whole image resized, with antialiasing."""
    whole = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0]
    return whole.clamp(0, 1)


def grid_crops(image: torch.Tensor, size: int = 224) -> torch.Tensor:
    """``(N, 3, size, size)``: every native-resolution crop on a grid of half-crop steps
    (none for an image smaller than a crop): dense patches, as NIQE takes them."""
    _, height, width = image.shape
    step = max(1, size // 2)
    patches = [
        image[:, y : y + size, x : x + size]
        for y in range(0, height - size + 1, step)
        for x in range(0, width - size + 1, step)
    ]
    return torch.stack(patches) if patches else image.new_zeros(0, 3, size, size)
