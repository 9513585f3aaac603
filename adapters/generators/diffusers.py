"""A diffusers pipeline as a generator: :class:`eliq.generation.DiffusersSampler`, loaded
from a release's hub id and revision or local folder (safetensors only, no remote code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eliq.generation import DiffusersSampler


def diffusers_generator(
    ref: str | Path, revision: str | None = None, **settings: Any
) -> DiffusersSampler:
    """``settings``: ``device``, ``dtype``, ``batch_size``, ``default_steps``,
    ``default_guidance``, ``size``."""
    return DiffusersSampler.from_pretrained(ref, revision=revision, **settings)
