"""Sampling a text-to-image model: the generator side of AI-specific and img2img negatives.

:class:`Sampler` is the contract the pair factory needs; :class:`DiffusersSampler` fulfils it
with a diffusers pipeline (generator adapters wrap it or bring their own). Loading is safe by
construction: weights only from safetensors (a pickle-only checkpoint is refused with a clear
error) and never ``trust_remote_code`` or a custom pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image

from eliq.devices import resolve_device

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
SINGLE_FILE_PIPELINES = frozenset({"StableDiffusionPipeline", "StableDiffusionXLPipeline"})


@runtime_checkable
class Sampler(Protocol):
    """Renders prompts with fixed seeds.

    ``overrides`` may hold ``steps``, ``guidance``, ``negative_prompt``, and for an
    image-to-image edit ``image`` (a list of PIL images, one per prompt) and ``strength``.
    """

    default_steps: int
    default_guidance: float

    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], **overrides: Any
    ) -> Iterator[tuple[str, int, Image.Image]]: ...


class UnsafeCheckpointError(ValueError):
    """A checkpoint that could only be loaded by unpickling, which can run arbitrary code."""


class DiffusersSampler:
    """A diffusers text-to-image pipeline, with its image-to-image twin sharing the weights."""

    def __init__(
        self,
        pipeline: Any,
        batch_size: int = 4,
        default_steps: int = 30,
        default_guidance: float = 7.5,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.size = size
        pipeline.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        **kwargs: Any,
    ) -> DiffusersSampler:
        """Load a pipeline from a local folder or a hub id at ``revision``."""
        from diffusers import AutoPipelineForText2Image

        refuse_pickle_only(name_or_path)
        torch_device = resolve_device(device)
        torch_dtype = _dtype(dtype, torch_device)
        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(
                str(name_or_path), revision=revision, dtype=torch_dtype, use_safetensors=True
            )
        except (OSError, ValueError) as exc:
            if "safetensors" in str(exc):
                raise UnsafeCheckpointError(
                    f"{name_or_path}: no safetensors weights; eliq never loads pickled "
                    "checkpoints (re-save it with save_pretrained(safe_serialization=True))"
                ) from exc
            raise
        return cls(pipeline.to(torch_device), **kwargs)

    @classmethod
    def from_single_file(
        cls,
        path: str | Path,
        config: str | Path,
        pipeline: str = "StableDiffusionPipeline",
        device: str = "auto",
        dtype: str = "auto",
        **kwargs: Any,
    ) -> DiffusersSampler:
        """Load a whole pipeline from one original-layout ``.safetensors`` checkpoint (as
        Civitai hosts them); ``config`` is a diffusers folder or hub id of the same
        architecture, whose component configs (and tokenizer) the weights are mapped onto."""
        import diffusers

        path = Path(path)
        if path.suffix != ".safetensors":
            raise UnsafeCheckpointError(
                f"{path}: eliq loads single-file checkpoints from safetensors only, never a pickle"
            )
        if pipeline not in SINGLE_FILE_PIPELINES:
            raise ValueError(f"pipeline must be one of {sorted(SINGLE_FILE_PIPELINES)}")
        torch_device = resolve_device(device)
        local = {"local_files_only": True} if Path(config).is_dir() else {}
        loaded = getattr(diffusers, pipeline).from_single_file(
            str(path), config=str(config), torch_dtype=_dtype(dtype, torch_device), **local
        )
        return cls(loaded.to(torch_device), **kwargs)

    @cached_property
    def _img2img(self) -> Any:
        from diffusers import AutoPipelineForImage2Image

        pipeline = AutoPipelineForImage2Image.from_pipe(self.pipeline)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def sample(
        self, prompts: Sequence[str], seeds: Sequence[int], **overrides: Any
    ) -> Iterator[tuple[str, int, Image.Image]]:
        if len(prompts) != len(seeds):
            raise ValueError("one seed per prompt")
        images = overrides.pop("image", None)
        strength = overrides.pop("strength", None)
        arguments = {
            "num_inference_steps": overrides.pop("steps", self.default_steps),
            "guidance_scale": overrides.pop("guidance", self.default_guidance),
            "negative_prompt": overrides.pop("negative_prompt", None),
        }
        if overrides:
            raise TypeError(f"unknown sampling overrides: {sorted(overrides)}")
        device = self.pipeline.device
        for start in range(0, len(prompts), self.batch_size):
            batch = slice(start, start + self.batch_size)
            generators = [torch.Generator(device).manual_seed(int(s)) for s in seeds[batch]]
            call = dict(arguments, prompt=list(prompts[batch]), generator=generators)
            if call["negative_prompt"] is not None:
                call["negative_prompt"] = [call["negative_prompt"]] * len(generators)
            if images is None:
                pipeline = self.pipeline
                if self.size is not None:
                    call["height"], call["width"] = self.size
            else:
                pipeline = self._img2img
                call.update(image=list(images[batch]), strength=strength or 0.5)
            with torch.inference_mode():
                result = pipeline(**call, output_type="pil")
            yield from zip(prompts[batch], seeds[batch], result.images, strict=True)


def refuse_pickle_only(name_or_path: str | Path) -> None:
    """Raise :class:`UnsafeCheckpointError` if a component of a local pipeline folder has
    pickled weights and no safetensors alternative."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return  # a hub id: diffusers enforces use_safetensors=True itself
    for component in [folder, *(p for p in folder.iterdir() if p.is_dir())]:
        files = [p for p in component.iterdir() if p.is_file()]
        pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickled and not any(p.suffix == ".safetensors" for p in files):
            raise UnsafeCheckpointError(
                f"{component}: only pickled weights ({pickled[0].name}); eliq never unpickles "
                "a checkpoint. Re-save it with safe_serialization=True."
            )


def _dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)
