"""The daemon's database: engines for it, and its schema brought to the newest Alembic
migration (``migrations/``) at start-up, one process at a time."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlmodel import create_engine

from daemon.state.lock import migration_lock

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets a busy timeout so a second reader waits."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


class StateNotReady(RuntimeError):
    """The state cannot be read as it is: missing, or at another schema revision."""


class StateMissing(StateNotReady):
    """No state yet: the daemon has not run on this database."""


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema behind ``engine`` to the newest migration (idempotent; processes
    that start together migrate one after another, see :func:`daemon.state.lock.migration_lock`)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = _alembic_config()
    with migration_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def read_only_engine(url: str) -> Engine:
    """An engine for readers (``eliq-daemon status``) that creates, migrates and writes
    nothing: a SQLite file is opened read-only, and its schema must be the newest."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise StateMissing(f"no daemon state at {path} yet: the daemon creates it")
        engine = create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"timeout": 30}
        )
    else:
        engine = create_engine(url, pool_pre_ping=True)
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise StateNotReady(
            f"the daemon's state is at schema revision {current or 'none'}, this eliq reads "
            f"{head}: start the daemon (`eliq-daemon once`) to migrate it"
        )
    return engine
