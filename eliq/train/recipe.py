"""A recipe: one file that says how a critic is trained, beside the pair sets it is
trained on. It holds the critic to build (:class:`~eliq.critic.config.CriticConfig`) and
how to train it (:class:`~eliq.train.settings.TrainSettings`), is stamped with the eliq
version that wrote it, and refuses keys it does not know, so a typo is an error, not a
default silently used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from eliq import __version__
from eliq.config import StrictModel
from eliq.critic.config import CriticConfig
from eliq.train.settings import TrainSettings

STAMP = "_eliq_version"


class Recipe(StrictModel):
    critic: CriticConfig = Field(
        default_factory=CriticConfig, description="The critic a fresh run builds."
    )
    train: TrainSettings = Field(default_factory=TrainSettings, description="How it trains.")
    retune: TrainSettings | None = Field(
        default=None,
        description="How a later release retunes it (the leave-generators-out experiment); "
        "None: the daemon's retune settings.",
    )

    @classmethod
    def load(cls, path: Path) -> Recipe:
        """A recipe from JSON or YAML; its errors name the file and the key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: not a recipe eliq reads ({type(error).__name__})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a recipe is a mapping, not {type(data).__name__}")
        data.pop(STAMP, None)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            mistakes = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            raise ValueError(f"{path}: {mistakes}") from None

    def save(self, path: Path) -> None:
        """As JSON, stamped with this eliq's version."""
        body = {STAMP: __version__, **self.model_dump(mode="json", exclude_none=True)}
        Path(path).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
