"""The critic's configuration: everything needed to rebuild it, saved as ``config.json``.

A saved config is stamped, as diffusers' and peft's are, with the class it builds and the
eliq version that saved it (``_class_name``, ``_eliq_version``), and records the revision of
the backbones the critic was trained on (``backbone_revision``), which loading checks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eliq import __version__
from eliq.prompts.record import prompt_or_none

log = logging.getLogger(__name__)
CLASS_NAME = "CriticModel"

QUALITY_INSTRUCTION = "Rate the visual quality of this image."
PAIRED_INSTRUCTION = "Rate the visual quality of this image and how well it matches: {prompt}"
# Parts added after critics were first saved (trainable ones, changes to a prior): a
# config saved before one existed describes a critic without it.
ADDED_LATER = {
    "alignment_linear": False,
    "quality_whole_image": False,
    "noise_free_sharpness": False,
    "alignment_evidence": False,
}


class LoraSettings(BaseModel):
    """LoRA on a backbone (peft); ``target_modules`` None uses the backbone's own default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = True
    rank: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str | None = None


class PristineSettings(BaseModel):
    """The pristine-statistics prior (:mod:`eliq.critic.pristine`): a Gaussian of pristine
    crops' early features, fitted when a critic is first trained."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weight: float = Field(
        default=0.5,
        ge=0.0,
        description="Quality prior units per standard deviation of the pristine crops' "
        "distances: how much an image's distance from the pristine photographs lowers its "
        "quality prior.",
    )
    levels: int = Field(
        default=3,
        ge=1,
        description="The first N backbone levels describe a crop (with the low-level "
        "statistics); semantic levels measure content, not degradation.",
    )
    keep_fraction: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="Fit only this most textured share of the pristine crops (by the "
        "variance of the Laplacian), as NIQE keeps only sharp patches.",
    )
    release_weight: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="On a retune, how far a release's own positives move the Gaussian (the "
        "rest stays as it was, so one release cannot overwrite the history).",
    )


class CriticConfig(BaseModel):
    """Backbones by name or path (like ``from_pretrained``) plus the small trainable parts.
    A key it does not know is refused (a typo), except in a saved checkpoint's config, where
    a newer eliq may have written it (:meth:`load` warns instead)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    vision_backbone: str = Field(
        default="mobilenet_v2",
        description="'mobilenet_v2' (offline ImageNet weights, or a .pth/.safetensors path), "
        "a Hugging Face CLIP/SigLIP checkpoint, or a multimodal LLM (folder or hub id).",
    )
    text_backbone: str = Field(
        default="minilm",
        description="'minilm' (the offline MiniLM-L6 package), a sentence encoder folder or "
        "hub id, 'clip' to use the text tower of a CLIP/SigLIP vision backbone, or 'joint' "
        "for a multimodal LLM that reads image and text together.",
    )
    backbone_family: str | None = Field(
        default=None,
        description="The backbone family that loads them (eliq.backbones); None: the one "
        "that claims the backbone names.",
    )
    backbone_revision: str | None = Field(
        default=None,
        description="The backbones' revision the critic was trained on (a hub commit, or a "
        "digest of their files); set when the critic is built, checked when it is loaded.",
    )
    view_size: int = Field(
        default=224, ge=16, le=4096, description="Side of each view fed to the backbone."
    )
    crops: int = Field(default=4, ge=1, description="Native-resolution crops per image.")
    dim: int = Field(default=192, ge=1, description="Width of fusion and query transformer.")
    quality_levels: int | None = Field(
        default=3,
        ge=1,
        description="The quality queries attend only to the first N backbone levels (plus "
        "the low-level statistics and the text); None: all levels. Technical quality is "
        "low-level, and on semantic levels a critic trained on synthetic distortions learns "
        "to recognise content instead.",
    )
    recognisability_weight: float = Field(
        default=1.0,
        ge=0.0,
        description="Weight of the class-probability entropy (nats) subtracted from the "
        "quality prior (log Laplacian variance); 0 leaves sharpness alone. Unit weight in "
        "the two measures' natural units was set a priori, not fitted. Applies to "
        "backbones with class probabilities (MobileNetV2).",
    )
    noise_free_sharpness: bool = Field(
        default=True,
        description="The quality prior's sharpness is the variance of the Laplacian less "
        "what white noise at the image's estimated level (Immerkaer) adds to it: noise "
        "raises the Laplacian, yet it is a defect. False: the raw variance, as critics "
        "saved before this field had.",
    )
    quality_linear: bool = Field(
        default=True,
        description="Add a linear residual on the crop-averaged low-level features (the "
        "levels the quality queries read, plus the statistics) to the quality score.",
    )
    quality_whole_image: bool = Field(
        default=False,
        description="Add a linear residual on the global view's last backbone level (what "
        "the whole image shows) to the quality score, next to the low-level one. It ranks "
        "images within a generator better and places generators among each other worse "
        "(measured in the README), so it is off by default.",
    )
    alignment_evidence: bool = Field(
        default=True,
        description="The alignment prior is the evidence that the image shows what the "
        "prompt names: the prompt's similarity to the class names a view shows, above its "
        "mean similarity to all class names, from the best view (an object the prompt "
        "names may fill one crop only). False: the similarity to the views' top classes, "
        "averaged over views, as critics saved before this field had. Applies to "
        "backbones with class probabilities (MobileNetV2, EfficientNet-Lite).",
    )
    alignment_linear: bool = Field(
        default=True,
        description="Add a bilinear residual between the global view's last backbone level "
        "and the prompt's sentence embedding to the alignment score.",
    )
    gradient_checkpointing: bool = Field(
        default=False,
        description="Recompute the joint backbone's language-model activations in the "
        "backward pass instead of keeping them: less memory for a VLM's retune, more time. "
        "Only a backbone that supports it (vlm) accepts it; it changes no score.",
    )
    pristine: PristineSettings | None = Field(
        default=None,
        description="Add a pristine-statistics term to the quality prior (see "
        "PristineSettings); None: the prior is sharpness and recognisability alone.",
    )
    heads: int = Field(default=4, ge=1)
    queries_per_axis: int = Field(default=4, ge=1)
    decoder_layers: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    max_prompt_tokens: int = Field(default=64, ge=1)
    vision_lora: LoraSettings = LoraSettings()
    text_lora: LoraSettings = LoraSettings()
    quality_instruction: str = QUALITY_INSTRUCTION
    paired_instruction: str = PAIRED_INSTRUCTION

    @model_validator(mode="after")
    def _heads_divide_the_width(self) -> CriticConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        return self

    def instruction(self, prompt: str | None) -> str:
        """The text the text tower sees: one model serves both axes. The prompt replaces
        ``{prompt}`` literally: the instruction is data, never a format string."""
        prompt = prompt_or_none(prompt)
        if prompt is None:
            return self.quality_instruction
        return self.paired_instruction.replace("{prompt}", prompt)

    def identity_json(self) -> str:
        """The config as critic versions and fingerprints digest it: without the backbone
        revision (the backbone weights are the fingerprint's, and loading refuses a
        checkpoint on other ones), gradient checkpointing (it changes no score) and, unless
        set, the family, the pristine prior, the noise-free sharpness and the alignment
        evidence, so critics saved before these fields keep their versions."""
        optional = ("backbone_family", "pristine", "noise_free_sharpness", "alignment_evidence")
        unset = {"backbone_revision", "gradient_checkpointing"} | {
            name for name in optional if getattr(self, name) in (None, False)
        }
        return self.model_dump_json(exclude=unset)

    def save(self, folder: Path) -> None:
        stamped = {"_class_name": CLASS_NAME, "_eliq_version": __version__}
        text = json.dumps({**stamped, **self.model_dump(mode="json")}, indent=2)
        (Path(folder) / "config.json").write_text(text)

    @classmethod
    def load(cls, folder: Path) -> CriticConfig:
        """A saved config; parts added since it was saved stay off, so its checkpoint fits.
        Keys this eliq does not know are named in a warning (a newer eliq saved them)."""
        path = Path(folder) / "config.json"
        try:
            saved: dict[str, Any] = json.loads(path.read_text())
        except (ValueError, RecursionError) as error:  # RecursionError: absurd nesting
            raise ValueError(f"{path}: not a JSON config ({type(error).__name__})") from None
        if not isinstance(saved, dict):
            raise ValueError(
                f"{path}: a critic config is a JSON object, not {type(saved).__name__}"
            )
        stamps = {key: saved.pop(key) for key in list(saved) if key.startswith("_")}
        if stamps.get("_class_name", CLASS_NAME) != CLASS_NAME:
            raise ValueError(
                f"{folder} holds a {stamps['_class_name']}, not a critic ({CLASS_NAME})"
            )
        unknown = sorted(saved.keys() - cls.model_fields.keys())
        if unknown:
            log.warning(
                "%s: config keys unknown to eliq %s ignored: %s (saved by eliq %s)",
                folder,
                __version__,
                unknown,
                stamps.get("_eliq_version", "unknown"),
            )
        known = {key: value for key, value in saved.items() if key not in unknown}
        try:
            return cls.model_validate({**ADDED_LATER, **known})
        except ValidationError as error:
            raise ValueError(f"{path}: {error}") from None
