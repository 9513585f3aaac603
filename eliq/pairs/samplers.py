"""The diffusers models the generative negative families render with, loaded by the
processes that make negatives, on first use: planning never loads a model."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from eliq.config import PairSettings
from eliq.pairs.families import NegativeFamily

if TYPE_CHECKING:
    from PIL import Image

    from eliq.generation import Sampler


def generative_families(settings: PairSettings) -> list[NegativeFamily]:
    """The model-rendered families that ``settings.sampler`` and ``settings.img2img`` enable."""
    if not (settings.sampler or settings.img2img):
        return []
    from eliq.pairs.generative import img2img_family, resampling_families

    loaded: dict[str, _SamplerOnFirstUse] = {}

    def sampler(name: str) -> _SamplerOnFirstUse:
        return loaded.setdefault(name, _SamplerOnFirstUse(name, settings.device))

    families = []
    if settings.sampler:
        families += resampling_families(sampler(settings.sampler))
    if settings.img2img:
        families.append(img2img_family(sampler(settings.img2img)))
    return families


class _SamplerOnFirstUse:
    """A diffusers sampler loaded when a family first renders with it: planning a build's
    chunks (the daemon, whatever executor makes them) never loads the model, only the
    processes that make negatives do."""

    def __init__(self, name: str, device: str) -> None:
        self.name, self.device = name, device
        self._sampler: Sampler | None = None
        self._loading = threading.Lock()  # the factory's threads render concurrently

    def _loaded(self) -> Sampler:
        from eliq.generation import DiffusersSampler

        with self._loading:
            if self._sampler is None:
                self._sampler = DiffusersSampler.from_pretrained(self.name, device=self.device)
            return self._sampler

    @property
    def default_steps(self) -> int:
        return self._loaded().default_steps

    @property
    def default_guidance(self) -> float:
        return self._loaded().default_guidance

    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], **overrides: Any
    ) -> Iterator[tuple[str, int, Image.Image]]:
        return self._loaded().sample(prompts, seeds, **overrides)
