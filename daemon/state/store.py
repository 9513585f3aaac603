"""Small typed queries over the daemon's tables, each in its own short transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from daemon.state.tables import (
    CriticStatus,
    CriticVersion,
    PairOutcomeRecord,
    PairSetRecord,
    RegistryCursor,
    ReleaseRecord,
    utcnow,
)


class Store:
    """Small typed queries over the tables, each in its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def cursor(self, registry: str) -> dict[str, Any] | None:
        with self.session() as session:
            row = session.get(RegistryCursor, registry)
            return row.cursor if row else None

    def record_poll(self, registry: str, releases: list[ReleaseRecord], cursor: dict) -> int:
        """Store new releases and the cursor after them in one transaction: a crash between
        the two can neither lose a release nor see it twice. Returns how many were new."""
        with self.session() as session:
            sequence = session.exec(select(ReleaseRecord.sequence)).all()
            next_sequence = max(sequence, default=0) + 1
            added = 0
            for release in releases:
                if session.get(ReleaseRecord, release.id) is not None:
                    continue
                release.sequence = next_sequence
                next_sequence += 1
                session.add(release)
                added += 1
            row = session.get(RegistryCursor, registry) or RegistryCursor(registry_name=registry)
            row.cursor, row.polled_at = cursor, utcnow()
            session.add(row)
            session.commit()
            return added

    def releases(self, states: list[str] | None = None) -> list[ReleaseRecord]:
        with self.session() as session:
            query = select(ReleaseRecord).order_by(ReleaseRecord.sequence)
            if states is not None:
                query = query.where(ReleaseRecord.state.in_(states))
            return list(session.exec(query).all())

    def release(self, release_id: str) -> ReleaseRecord:
        with self.session() as session:
            row = session.get(ReleaseRecord, release_id)
            if row is None:
                raise KeyError(f"no release {release_id!r}")
            return row

    def save(self, *rows: SQLModel) -> None:
        self.commit(save=rows)

    def commit(self, save: Iterable[SQLModel] = (), delete: Iterable[SQLModel] = ()) -> None:
        """Remove ``delete`` and store ``save`` (new rows or changed ones) in one
        transaction."""
        with self.session() as session:
            for row in delete:
                session.delete(session.merge(row))
            session.flush()  # a row replaced under a unique key is gone before its successor
            for row in save:
                session.merge(row)
            session.commit()

    def pair_set(self, release_id: str) -> PairSetRecord:
        """The pair set built from ``release_id``'s samples."""
        found = self.rows(PairSetRecord, release_id=release_id)
        if not found:
            raise LookupError(f"{release_id} has no pair set yet")
        return found[0]

    def critic_versions(self) -> list[CriticVersion]:
        with self.session() as session:
            query = select(CriticVersion).order_by(CriticVersion.id)
            return list(session.exec(query).all())

    def critic_for(self, release_id: str) -> CriticVersion | None:
        with self.session() as session:
            query = select(CriticVersion).where(CriticVersion.release_id == release_id)
            return session.exec(query).first()

    def champion(self) -> CriticVersion | None:
        with self.session() as session:
            query = select(CriticVersion).where(CriticVersion.status == CriticStatus.champion)
            return session.exec(query).first()

    def add(self, row: SQLModel) -> SQLModel:
        with self.session() as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def pair_outcomes(self, critic: str, pair_sets: dict[str, str]) -> dict[str, bool]:
        """What ``critic`` ranked of the named pair sets (name: digest), keyed
        ``"<name>/<pair id>"`` as :func:`eliq.evaluation.held_out_accuracy` keys them."""
        with self.session() as session:
            query = select(PairOutcomeRecord).where(
                PairOutcomeRecord.critic == critic,
                PairOutcomeRecord.pair_set.in_(set(pair_sets.values())),
            )
            by_digest = {row.pair_set: row.outcomes for row in session.exec(query)}
        return {
            f"{name}/{pair_id}": right
            for name, digest in pair_sets.items()
            for pair_id, right in by_digest.get(digest, {}).items()
        }

    def pair_outcome_rows(
        self, critic: str, pair_sets: dict[str, str], outcomes: dict[str, bool]
    ) -> list[PairOutcomeRecord]:
        """The kept rows with ``outcomes`` (keyed as :meth:`pair_outcomes` returns them)
        added, to store."""
        rows = []
        with self.session() as session:
            for name, digest in pair_sets.items():
                mine = {
                    key.removeprefix(f"{name}/"): right
                    for key, right in outcomes.items()
                    if key.startswith(f"{name}/")
                }
                if not mine:
                    continue
                query = select(PairOutcomeRecord).where(
                    PairOutcomeRecord.critic == critic, PairOutcomeRecord.pair_set == digest
                )
                row = session.exec(query).first() or PairOutcomeRecord(
                    critic=critic, pair_set=digest
                )
                row.outcomes, row.updated_at = {**row.outcomes, **mine}, utcnow()
                rows.append(row)
        return rows

    def rows(self, table: type[SQLModel], **where: Any) -> list[Any]:
        with self.session() as session:
            query = select(table)
            for column, value in where.items():
                query = query.where(getattr(table, column) == value)
            return list(session.exec(query).all())
