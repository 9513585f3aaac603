"""Does MLflow still hold what the daemon's state says it registered?

The state and the MLflow registry are two stores, and either can be lost on its own: an
embedded ``mlflow.db`` deleted or overwritten, a tracking server restored from an older
backup. A daemon that carried on would retune from a champion that no longer exists, and
serve nothing. :func:`registry_problems` compares the two without writing to either (a
missing SQLite store is not created); the service refuses to run on a mismatch, alerts,
and ``eliq-daemon reregister`` rebuilds the registry from the release folders.

MLflow keeps its registry in a SQL database (SQLAlchemy URLs) or behind a tracking server:
this module reads either the way MLflow does, which is why it, alone in ``adapters``,
speaks SQLAlchemy. It is not the daemon's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import httpx
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from adapters.critic_stores import CHAMPION, KnownVersion, RegistryUnreachable, store_key
from eliq.redaction import redact_url

RELEASE_TAG = "eliq.release"  # on each run and version: the release it was retuned on
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def sqlite_store_missing(tracking_uri: str) -> Path | None:
    """The path of an embedded SQLite store that does not exist, else None."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    path = Path(make_url(tracking_uri).database or "")
    return None if path.is_file() else path


def ensure_reachable(tracking_uri: str) -> None:
    """Raise :class:`RegistryUnreachable` when a tracking server or a database server does
    not answer, so an outage is told apart from a store that lost its versions."""
    scheme = urlparse(tracking_uri).scheme
    try:
        if scheme in ("http", "https"):
            httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=10.0).raise_for_status()
        elif scheme and not scheme.startswith(("sqlite", "file")) and "://" in tracking_uri:
            engine = create_engine(tracking_uri)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
    except (httpx.HTTPError, OperationalError) as error:
        raise RegistryUnreachable(
            f"MLflow at {redact_url(tracking_uri)} does not answer: {type(error).__name__}"
        ) from None


def registry_problems(
    tracking_uri: str, model_name: str, versions: Sequence[KnownVersion]
) -> list[str]:
    """What the registry lacks of ``versions`` (the state's rows), in words; [] if nothing.
    Raises :class:`RegistryUnreachable` when MLflow does not answer at all."""
    registered = [v for v in versions if v.store_version]
    if not registered:
        return []
    shown = redact_url(tracking_uri)
    numbers = ", ".join(f"v{v.store_version}" for v in registered)
    missing = sqlite_store_missing(tracking_uri)
    if missing is not None:
        return [f"the MLflow store {missing} is missing; the state holds critic {numbers}"]
    ensure_reachable(tracking_uri)
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        model = client.get_registered_model(model_name)
    except MlflowException as error:
        if "RESOURCE_DOES_NOT_EXIST" in str(error.error_code):
            return [f"MLflow at {shown} has no model {model_name!r}; the state holds {numbers}"]
        return [f"the MLflow store {shown} cannot be read: {redact_url(str(error))[:300]}"]
    except Exception as error:  # noqa: BLE001 - a corrupt store fails in driver-specific ways
        return [
            f"the MLflow store {shown} cannot be read: "
            f"{type(error).__name__}: {redact_url(str(error))[:300]}"
        ]
    problems = []
    for version in registered:
        try:
            found = client.get_model_version(model_name, version.store_version)
        except MlflowException:
            problems.append(
                f"{model_name} v{version.store_version} ({store_key(version.release_id)}) "
                "is missing"
            )
            continue
        if found.tags.get(RELEASE_TAG) != store_key(version.release_id):
            problems.append(
                f"{model_name} v{version.store_version} belongs to release "
                f"{found.tags.get(RELEASE_TAG)!r}, not {store_key(version.release_id)!r}"
            )
    champion = next((v for v in registered if v.status == CHAMPION), None)
    aliased = (model.aliases or {}).get(CHAMPION)
    if champion is not None and str(aliased) != champion.store_version:
        problems.append(
            f"the {CHAMPION!r} alias points to {f'v{aliased}' if aliased else 'nothing'}, "
            f"the state's champion is v{champion.store_version}"
        )
    return problems


def ping(uri: str) -> None:
    """Reach the tracking store without creating anything: a server's ``/health``, a
    database's schema version (a corrupt file fails), a folder's existence. An embedded
    SQLite store that the daemon has not created yet (before its first registration) is
    ready if its folder exists."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        httpx.get(f"{uri.rstrip('/')}/health", timeout=3.0).raise_for_status()
    elif scheme.split("+")[0] in SQL_SCHEMES:
        url = make_url(uri)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            if not Path(url.database or "").parent.is_dir():
                raise FileNotFoundError(f"no folder for the MLflow database {url.database}")
            return
        with _sql_engine(uri).connect() as connection:  # reads a page: a corrupt file fails
            connection.execute(text("SELECT count(*) FROM alembic_version"))
    else:
        path = Path(urlparse(uri).path if scheme == "file" else uri)
        if not path.is_dir():
            raise FileNotFoundError(f"no MLflow store at {path}")


@lru_cache(maxsize=4)
def _sql_engine(uri: str):
    return create_engine(uri, pool_pre_ping=True)
