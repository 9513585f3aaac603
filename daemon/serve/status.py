"""What the daemon knows, as plain data: for ``eliq-daemon status`` and the status API.

Reading never writes: the state is opened read-only (not created, not migrated) and MLflow
is asked, not set up.
"""

from __future__ import annotations

from typing import Any

from adapters.critic_stores import RegistryUnreachable
from daemon.composition import critic_store, read_state
from daemon.serve.readmodel import release_steps
from daemon.settings import DaemonSettings
from daemon.state.database import StateMissing
from eliq.redaction import redact_url


def collect_status(settings: DaemonSettings, aliases: bool = True) -> dict[str, Any]:
    """Releases (in discovery order) with their states, critic versions with their MLflow
    aliases (``aliases=False`` skips MLflow), what MLflow lacks of them, and where state and
    MLflow live; before the daemon's first run, none of them and a note saying so. Raises
    :class:`~daemon.state.StateNotReady` when the state is at another schema revision."""
    where = {
        "database": redact_url(settings.state_url),
        "mlflow_tracking_uri": redact_url(settings.tracking_uri),
        "model_name": settings.model_name,
    }
    try:
        store = read_state(settings)
    except StateMissing as missing:
        empty = {"registry_problems": [], "releases": [], "critic_versions": []}
        return where | empty | {"note": str(missing)}
    versions = store.critic_versions()
    problems: list[str] = []
    by_version: dict[str, list[str]] = {}
    if aliases and versions:
        critics = critic_store(settings)
        try:
            problems = critics.problems(versions)
        except RegistryUnreachable as down:
            problems = [str(down)]
        if not problems:  # the registered model is there: reading its aliases creates nothing
            by_version = critics.aliases()
    steps = release_steps(store)
    return where | {
        "registry_problems": problems,
        "releases": [
            r.model_dump(mode="json", exclude={"loader"})
            | {"loader": r.loader.get("kind"), "steps": steps.get(r.id, [])}
            for r in store.releases()
        ],
        "critic_versions": [
            v.model_dump(mode="json") | {"aliases": by_version.get(str(v.store_version), [])}
            for v in versions
        ],
    }
