"""What the daemon knows, as plain data: for ``eliq-daemon status`` and the status API."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from daemon.settings import DaemonSettings
from daemon.state import Store, make_engine, migrate


def collect_status(settings: DaemonSettings, aliases: bool = True) -> dict[str, Any]:
    """Releases (in discovery order) with their states, critic versions with their MLflow
    aliases (``aliases=False`` skips the MLflow call), and where state and MLflow live."""
    engine = make_engine(settings.state_url)
    migrate(engine)
    store = Store(engine)
    by_version: dict[str, list[str]] = {}
    if aliases and store.critic_versions():
        from daemon.critic_registry import CriticRegistry

        registry = CriticRegistry(
            settings.tracking_uri, settings.model_name, settings.experiment, settings.artifact_root
        )
        by_version = registry.aliases()
    return {
        "database": make_url(settings.state_url).render_as_string(hide_password=True),
        "mlflow_tracking_uri": settings.tracking_uri,
        "model_name": settings.model_name,
        "releases": [
            r.model_dump(mode="json", exclude={"loader"}) | {"loader": r.loader.get("kind")}
            for r in store.releases()
        ],
        "critic_versions": [
            v.model_dump(mode="json") | {"aliases": by_version.get(str(v.mlflow_version), [])}
            for v in store.critic_versions()
        ],
    }
