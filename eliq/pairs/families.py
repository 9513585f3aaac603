"""The registry of negative families: each makes a positive worse in one known way.

A family is created by name, like a pyiqa metric. Built-in families register themselves
when :mod:`eliq.pairs` is imported; third-party packages add theirs through the
``eliq.negatives`` entry-point group, each entry point naming a :class:`NegativeFamily`.

Image families are batched tensor functions ``(images, severity, generators) -> images``:
``images`` is ``(B, 3, H, W)`` in [0, 1] on any device, ``severity`` a ``(B,)`` integer
tensor in ``1..levels`` and ``generators`` one seeded CPU ``torch.Generator`` per image.
Random draws happen on the CPU and move to the images' device, so a pair is the same
whatever batch it lands in and whether it was built on a GPU or not. Severity ``k + 1`` is
always worse than ``k`` for the same image and generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from eliq.plugins import Plugins
from eliq.prompts.record import PromptRecord

Aspect = Literal["technical", "aesthetic", "alignment"]
Kind = Literal["conventional", "ai_specific", "slot_edit", "cross_prompt"]
ImageFn = Callable[[torch.Tensor, torch.Tensor, Sequence[torch.Generator]], torch.Tensor]
PromptFn = Callable[
    [PromptRecord, int, np.random.Generator, Sequence[PromptRecord]], "PromptNegative | None"
]
GenerateFn = Callable[
    [Sequence[torch.Tensor], Sequence[str], Sequence[int], Sequence[int]], list[torch.Tensor]
]
"""``(images, prompts, seeds, severities) -> images`` of the same sizes: a model re-renders."""


@dataclass(frozen=True)
class PromptNegative:
    """A prompt that the kept image no longer matches, and what was changed to get it."""

    text: str
    detail: dict


@dataclass(frozen=True)
class NegativeFamily:
    """One way of making a negative: exactly one of ``degrade`` (a batched tensor op),
    ``edit`` (a prompt edit) and ``generate`` (a generative model) is set.

    ``requires`` names what a positive must carry for the family to apply to it.
    """

    name: str
    aspect: Aspect
    kind: Kind
    description: str
    levels: int = 5
    degrade: ImageFn | None = None
    edit: PromptFn | None = None
    generate: GenerateFn | None = None
    requires: tuple[Literal["prompt", "seed"], ...] = ()

    def __post_init__(self) -> None:
        if sum(fn is not None for fn in (self.degrade, self.edit, self.generate)) != 1:
            raise ValueError(f"family {self.name!r} must set one of degrade, edit and generate")

    @property
    def edits_image(self) -> bool:
        return self.degrade is not None


FAMILIES: Plugins[NegativeFamily] = Plugins("negative family", "eliq.negatives")


def register(family: NegativeFamily) -> NegativeFamily:
    return FAMILIES.add(family.name, family)


def image_family(
    name: str, aspect: Aspect, kind: Kind, levels: int = 5
) -> Callable[[ImageFn], ImageFn]:
    """Decorator registering a batched image degradation; its docstring describes it."""

    def wrap(fn: ImageFn) -> ImageFn:
        description = (fn.__doc__ or name).strip().splitlines()[0]
        register(NegativeFamily(name, aspect, kind, description, levels, degrade=fn))
        return fn

    return wrap


def available_families() -> dict[str, NegativeFamily]:
    """Every registered family by name, built-in and from entry points."""
    return FAMILIES.all()


def get_family(name: str) -> NegativeFamily:
    return FAMILIES.get(name)


def level_values(table: Sequence[float], severity: torch.Tensor) -> torch.Tensor:
    """Per-image parameters: ``table[severity - 1]`` as a float tensor on ``severity``'s device."""
    values = torch.as_tensor(table, dtype=torch.float32, device=severity.device)
    return values[severity.long() - 1]


def per_level(
    images: torch.Tensor,
    severity: torch.Tensor,
    fn: Callable[[torch.Tensor, int, list[int]], torch.Tensor],
) -> torch.Tensor:
    """Apply ``fn(sub_batch, level, indices)`` to each group of images sharing a level.

    For operations whose parameters must be Python scalars (kernel sizes, resize factors).
    """
    out = torch.empty_like(images)
    for level in severity.unique().tolist():
        index = (severity == level).nonzero().flatten()
        out[index] = fn(images[index], int(level), index.tolist())
    return out


def uniform(
    generators: Sequence[torch.Generator], *shape: int, device: torch.device
) -> torch.Tensor:
    """One ``U(0, 1)`` draw of ``shape`` per generator, stacked: ``(B, *shape)``."""
    return torch.stack([torch.rand(shape, generator=g) for g in generators]).to(device)


def normal(
    generators: Sequence[torch.Generator], *shape: int, device: torch.device
) -> torch.Tensor:
    """One standard-normal draw of ``shape`` per generator, stacked: ``(B, *shape)``."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)
