"""What a backbone family gives the critic: the protocol a plug-in implements.

A family (:class:`BackboneFamily`) loads a vision and a text side from the names in a
:class:`~eliq.critic.config.CriticConfig` and says which revision of its weights it loaded.
The critic asks of them only what is written here:

* **vision** (:class:`VisionEncoder`): ``forward(views) -> levels``, pooled feature vectors
  from early (low-level detail) to late (semantics), one ``(N, level_dims[i])`` tensor per
  level; ``concepts(levels)``, an optional pre-aligned judgement of what each view shows
  (probabilities over ``concept_labels``, or a unit embedding in the text side's sentence
  space; None where the family has none: the alignment prior is then 0); and
  ``default_lora_targets``, the modules LoRA adapts when the config names none.
* **text** (:class:`TextEncoder`): ``forward(texts, max_tokens, images)``, token features and
  a padding mask for the instructions; ``sentence(texts, max_tokens)``, unit embeddings of the
  bare prompts; ``default_lora_targets``. A **joint** backbone (a multimodal LLM) reads the
  image with the instruction: its text side sets ``reads_images`` and is given each image's
  global view.
* **caching**: the vision side's features are cached whenever none of its ``tower``'s
  parameters train (the critic's ``vision_is_frozen``); a text side that reads images is
  never cached.

Backbones keep their inference behaviour while adapters train (BatchNorm statistics,
dropout), and their own weights never train: only LoRA adapters on them do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from transformers.utils import logging as transformers_logging

from eliq.reductions import variance


class Backbone(nn.Module):
    def train(self, mode: bool = True) -> Backbone:
        """Pre-trained backbones keep their inference behaviour (BatchNorm statistics,
        dropout) while LoRA adapters train."""
        return super().train(False)


class VisionEncoder(Backbone):
    level_dims: list[int]
    default_lora_targets: list[str] | str
    concept_labels: list[str] | None = None
    exportable: bool = True
    """Whether ``forward`` is a tensor function that exports to ONNX (runtime="onnxruntime")."""

    def forward(self, views: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 3, S, S)`` views in [0, 1] -> one ``(N, level_dims[i])`` tensor per level."""
        raise NotImplementedError

    def concepts(self, levels: list[torch.Tensor]) -> torch.Tensor | None:
        """What each view shows, from its levels: probabilities over ``concept_labels``, or,
        where that is None, a unit embedding in the paired text encoder's sentence space;
        None when the family has no pre-aligned judgement."""
        raise NotImplementedError

    @property
    def tower(self) -> nn.Module:
        """The modules whose weights the levels depend on: all of this one, unless it shares
        a model with the text side (whose adapters then neither un-freeze the vision side
        nor change its cached features)."""
        return self


class TextEncoder(Backbone):
    dim: int
    default_lora_targets: list[str] | str
    reads_images: bool = False

    def forward(
        self, texts: list[str], max_tokens: int, images: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token features ``(B, T, dim)`` and a padding mask ``(B, T)`` (True = padding).
        ``images``: ``(B, 3, S, S)`` global views in [0, 1], given when ``reads_images``."""
        raise NotImplementedError

    def sentence(self, texts: list[str], max_tokens: int) -> torch.Tensor:
        """Unit sentence embeddings ``(B, sentence_dim)``, comparable with ``concepts``."""
        raise NotImplementedError

    def checkpoint_activations(self) -> None:
        """Recompute activations in the backward pass (``gradient_checkpointing``)."""
        raise ValueError(f"{type(self).__name__} does not support gradient_checkpointing")


@dataclass
class Backbones:
    """What a family loaded: both sides and the revision of the weights they hold (a hub
    commit, or a digest of the files), which a checkpoint records and checks."""

    vision: VisionEncoder
    text: TextEncoder
    revision: str | None


class BackboneFamily(Protocol):
    """A kind of backbone, registered by name in :data:`eliq.backbones.BACKBONES` (built in,
    or by a package's ``eliq.backbones`` entry point)."""

    def claims(self, vision: str, text: str) -> bool:
        """Whether this family loads backbones of these names when the config names no
        family."""
        ...

    def load(self, vision: str, text: str, revision: str | None = None) -> Backbones:
        """Both sides (``revision``: a hub commit to pin, where the names are hub ids)."""
        ...


def pool(maps: torch.Tensor, dim: tuple[int, ...]) -> torch.Tensor:
    """Mean and standard deviation over ``dim``: texture statistics, not just the average."""
    return torch.cat([maps.mean(dim=dim), variance(maps, dim).sqrt()], dim=-1)


@contextmanager
def no_loading_bars() -> Iterator[None]:
    """transformers draws a bar per component it loads; the critic says it loaded once."""
    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()
