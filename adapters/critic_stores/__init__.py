"""Where critic versions are registered and promoted: the daemon's ``CriticStore`` port.

A store keeps one version per release (registration is idempotent) and one of the critic
the daemon started from (:data:`STARTING`), the gate's outcome on each, and two aliases,
``champion`` and ``challenger``; it also says what it lacks of the versions the daemon's
state holds, so a lost store is noticed before anything retunes from it. MLflow's model
registry (:mod:`adapters.critic_stores.mlflow`) is today's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CHAMPION, CHALLENGER = "champion", "challenger"  # the aliases
STARTING = "starting"
"""The key the store keeps the critic the daemon started from under (it has no release)."""


def store_key(release_id: str | None) -> str:
    """What the store keys a version by: its release, or :data:`STARTING`."""
    return release_id or STARTING


class RegistryUnreachable(RuntimeError):
    """The store does not answer: nothing is known to be lost (yet)."""


@dataclass(frozen=True)
class RegisteredCritic:
    version: str
    model_uri: str


class KnownVersion(Protocol):
    """What the daemon's state says of a version it registered."""

    store_version: str | None
    release_id: str | None
    status: str


class CriticStore(Protocol):
    def register(
        self,
        release_id: str,
        checkpoint: Path,
        tags: dict[str, str],
        metrics: dict[str, float],
        history: list[dict[str, Any]],
        params: dict[str, str] | None = None,
    ) -> RegisteredCritic:
        """The version of ``release_id``, created only if missing."""
        ...

    def tag_version(self, version: str, tags: dict[str, str]) -> None: ...

    def record_metrics(self, version: str, metrics: dict[str, float]) -> None:
        """Numbers measured of ``version`` after its registration (its evaluation)."""
        ...

    def attach_files(self, version: str, folder: Path, name: str) -> None:
        """``folder``'s files kept with ``version`` under ``name`` (drift reports)."""
        ...

    def set_alias(self, alias: str, version: str) -> None: ...

    def delete_alias(self, alias: str) -> None: ...

    def aliases(self) -> dict[str, list[str]]:
        """Aliases per version number."""
        ...

    def ping(self) -> None:
        """Reach the store without creating anything; raises when it cannot be read."""
        ...

    def problems(self, versions: Sequence[KnownVersion]) -> list[str]:
        """What the store lacks of ``versions``, in words, without writing anything; raises
        :class:`RegistryUnreachable` when it does not answer."""
        ...
