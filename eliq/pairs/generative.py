"""Negatives rendered by a generative model, when one is configured.

* ``fewer_steps`` and ``off_guidance`` (technical, AI-specific): the positive's own prompt and
  seed sampled again with fewer denoising steps, or with a guidance scale far above the
  model's range. They need positives that this sampler rendered, with their seeds.
* ``img2img_degrade`` (aesthetic): an image-to-image edit of the positive towards a badly
  composed, dull-coloured version, at a strength low enough to keep its content.

These families are built per run from a :class:`~eliq.generation.Sampler`, so they are not in
the global registry: pass them to :class:`~eliq.pairs.factory.PairFactory` as extras.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from eliq.generation import Sampler
from eliq.imageio import from_pil, to_pil

from .families import NegativeFamily

STEP_FRACTIONS = (0.5, 0.3, 0.18, 0.1, 0.05)
GUIDANCE_FACTORS = (2.0, 3.0, 4.5, 6.5, 9.0)
IMG2IMG_STRENGTH = (0.3, 0.4, 0.5, 0.6, 0.7)
RESAMPLING = {
    "fewer_steps": "the same prompt and seed sampled with fewer denoising steps",
    "off_guidance": "the same prompt and seed sampled with an off-range guidance scale",
}
"""The resampling families (technical, AI-specific) and what each negative is; renders made
elsewhere in these ways become pairs with :func:`eliq.pairs.rendered.rendered_pair_set`."""
IMG2IMG_DIRECTIONS = (
    "awkward off-centre composition, subject cut off at the edge",
    "dull muddy colours, flat grey lighting",
    "cluttered messy background, distracting composition",
    "washed-out faded colours, strong colour cast",
    "badly framed amateur snapshot, tilted horizon",
)
IMG2IMG_NEGATIVE = "well composed, balanced framing, vivid harmonious colours, professional"


def _as_tensors(images: Sequence[Image.Image], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Rendered PIL images as tensors resized to their positives' sizes."""
    out = []
    for image, reference in zip(images, like, strict=True):
        tensor = from_pil(image)
        if tensor.shape[-2:] != reference.shape[-2:]:
            tensor = F.interpolate(
                tensor[None], size=reference.shape[-2:], mode="bilinear", antialias=True
            )[0]
        out.append(tensor.clamp(0, 1))
    return out


def _render(
    sampler: Sampler,
    prompts: Sequence[str],
    seeds: Sequence[int],
    severities: Sequence[int],
    overrides: Callable[[int, list[int]], dict[str, Any]],
) -> list[Image.Image]:
    """Sample each severity level's items in one call; ``overrides(level, indices)``."""
    rendered: list[Image.Image | None] = [None] * len(prompts)
    for level in sorted(set(severities)):
        indices = [i for i, s in enumerate(severities) if s == level]
        results = sampler.sample(
            [prompts[i] for i in indices], [seeds[i] for i in indices], **overrides(level, indices)
        )
        for index, (_, _, image) in zip(indices, results, strict=True):
            rendered[index] = image
    return rendered


def resampling_families(sampler: Sampler) -> list[NegativeFamily]:
    """``fewer_steps`` and ``off_guidance`` for positives rendered by ``sampler``."""

    def fewer_steps(images, prompts, seeds, severities):
        def steps(level, _):
            return {"steps": max(1, round(sampler.default_steps * STEP_FRACTIONS[level - 1]))}

        return _as_tensors(_render(sampler, prompts, seeds, severities, steps), images)

    def off_guidance(images, prompts, seeds, severities):
        def guidance(level, _):
            return {"guidance": sampler.default_guidance * GUIDANCE_FACTORS[level - 1]}

        return _as_tensors(_render(sampler, prompts, seeds, severities, guidance), images)

    return [
        NegativeFamily(
            "fewer_steps",
            "technical",
            "ai_specific",
            RESAMPLING["fewer_steps"],
            generate=fewer_steps,
            requires=("prompt", "seed"),
        ),
        NegativeFamily(
            "off_guidance",
            "technical",
            "ai_specific",
            RESAMPLING["off_guidance"],
            generate=off_guidance,
            requires=("prompt", "seed"),
        ),
    ]


def img2img_family(sampler: Sampler) -> NegativeFamily:
    """``img2img_degrade``: an image-to-image edit that worsens composition or colour."""

    def degrade(images, prompts, seeds, severities):
        directions = [IMG2IMG_DIRECTIONS[seed % len(IMG2IMG_DIRECTIONS)] for seed in seeds]
        edit_prompts = [
            f"{prompt}, {direction}" if prompt else direction
            for prompt, direction in zip(prompts, directions, strict=True)
        ]

        def edit(level, indices):
            return {
                "image": [to_pil(images[i]) for i in indices],
                "strength": IMG2IMG_STRENGTH[level - 1],
                "negative_prompt": IMG2IMG_NEGATIVE,
            }

        return _as_tensors(_render(sampler, edit_prompts, seeds, severities, edit), images)

    return NegativeFamily(
        "img2img_degrade",
        "aesthetic",
        "ai_specific",
        "an image-to-image edit towards poor composition or colour, content kept",
        generate=degrade,
    )
