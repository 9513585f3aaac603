"""Exactly one acting daemon per database, however many replicas run.

PostgreSQL: a session-level advisory lock held on a dedicated connection for as long as the
daemon acts (released by the server if the process dies). SQLite: an OS file lock beside
the database file (released by the kernel if the process dies). A replica that cannot take
the lock waits and retries, so it takes over when the active one stops.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another daemon is acting against this database."""


def advisory_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def migration_lock(engine: Engine, timeout_s: float = 600.0) -> Iterator[None]:
    """Held while one process migrates the schema: processes started together on a fresh
    database migrate one after another (a lock file beside a SQLite file, a session-level
    advisory lock on PostgreSQL), the later ones finding the schema made."""
    if engine.dialect.name == "postgresql":
        key = {"key": advisory_key("eliq-migrations")}
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(database.removeprefix("file:").split("?")[0])
    with FileLock(path.with_name(path.name + ".migrate.lock"), timeout=timeout_s):
        yield


class LeaderLock:
    def __init__(self, engine: Engine, name: str = "eliq-daemon") -> None:
        self.engine = engine
        self.name = name
        self._connection: Connection | None = None
        self._file: FileLock | None = None
        if engine.dialect.name == "sqlite":
            database = Path(engine.url.database or "state.db")
            self._file = FileLock(database.with_name(database.name + ".lock"))

    def acquire(self) -> None:
        """Take the lock now or raise :class:`LockHeld`."""
        if self._file is not None:
            try:
                self._file.acquire(timeout=0)
            except Timeout as error:
                raise LockHeld(f"another daemon holds {self._file.lock_file}") from error
            return
        connection = self.engine.connect()
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(self.name)}
        ).scalar()
        if not taken:
            connection.close()
            raise LockHeld(f"another daemon holds the advisory lock {self.name!r}")
        connection.commit()
        self._connection = connection

    def release(self) -> None:
        if self._file is not None:
            self._file.release()
        elif self._connection is not None:
            self._connection.execute(
                text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self.name)}
            )
            self._connection.close()
            self._connection = None

    def __enter__(self) -> LeaderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
