"""The daemon's durable state: SQLModel tables in SQLite (default) or PostgreSQL.

Progress lives here, not in the scheduler: each release row records the last step it
completed, so a daemon killed at any point resumes at the next step after a restart. The
schema is created and upgraded by Alembic migrations (``daemon/migrations``) at start-up.

Release states, in order (``parked`` is reached from any of them after ``max_attempts``
failures of one step, and left by ``eliq-daemon retry``)::

    discovered -> sampled -> paired -> trained -> registered -> evaluated -> drift_checked
        -> decided -> done
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Column, Engine, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, create_engine, select

from daemon.lock import migration_lock

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ReleaseState(StrEnum):
    discovered = "discovered"
    sampled = "sampled"
    paired = "paired"
    trained = "trained"
    registered = "registered"
    evaluated = "evaluated"
    drift_checked = "drift_checked"
    decided = "decided"
    done = "done"
    parked = "parked"


PIPELINE = [s for s in ReleaseState if s is not ReleaseState.parked]


class Step(StrEnum):
    """A step of the release cycle. Its value is what the database keeps (where a parked
    release failed, the name of a job run), so the code that runs a step may be renamed
    or moved without stranding a stored release."""

    sample = "sample"
    build_pairs = "build_pairs"
    retune = "retune"
    register = "register"
    evaluate = "evaluate"
    check_drift = "check_drift"
    decide = "decide"
    announce = "announce"


NEXT_STEP: dict[ReleaseState, Step] = dict(zip(PIPELINE[:-1], Step, strict=True))
"""The step a release in each state waits for (``done`` waits for none)."""


class ReleaseRecord(SQLModel, table=True):
    __tablename__ = "releases"

    id: str = Field(primary_key=True, description="The registry's stable release id.")
    registry_name: str = Field(index=True, description="The daemon's name for its registry.")
    source: str
    name: str = Field(index=True, description="The generator, without the version.")
    appeared_at: datetime
    discovered_at: datetime = Field(default_factory=utcnow)
    sequence: int = Field(index=True, description="Order of discovery; processing order.")
    loader: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=ReleaseState.discovered, index=True)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    parked_step: str | None = Field(
        default=None, description="The Step a parked release failed at; retry resumes there."
    )
    updated_at: datetime = Field(default_factory=utcnow)


class RegistryCursor(SQLModel, table=True):
    __tablename__ = "registry_cursors"

    registry_name: str = Field(primary_key=True)
    cursor: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    polled_at: datetime = Field(default_factory=utcnow)


class SampleSet(SQLModel, table=True):
    __tablename__ = "samples"

    release_id: str = Field(primary_key=True, foreign_key="releases.id")
    folder: str
    images: int
    created_at: datetime = Field(default_factory=utcnow)


class PairSetRecord(SQLModel, table=True):
    __tablename__ = "pair_sets"

    release_id: str = Field(primary_key=True, foreign_key="releases.id")
    path: str
    digest: str
    pairs: int
    created_at: datetime = Field(default_factory=utcnow)


class CriticVersion(SQLModel, table=True):
    __tablename__ = "critic_versions"
    __table_args__ = (UniqueConstraint("release_id"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: str | None = Field(
        default=None,
        foreign_key="releases.id",
        description="The release it was retuned on; None: the critic the daemon started from.",
    )
    checkpoint: str
    parent_version: str | None = Field(default=None, description="MLflow version it came from.")
    mlflow_version: str | None = None
    run_id: str | None = None
    status: str = Field(
        default="trained", description="trained, challenger, champion, held, retired"
    )
    gate: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    training: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None


class EvaluationRecord(SQLModel, table=True):
    __tablename__ = "evaluations"

    id: int | None = Field(default=None, primary_key=True)
    critic_version_id: int = Field(foreign_key="critic_versions.id", index=True)
    role: str = Field(description="challenger, or baseline: the champion or starting critic")
    scope: str = Field(description="new: the release's held-out pairs; earlier: older releases")
    accuracy: float | None
    pairs: int | None = Field(default=None, description="Held-out pairs behind the accuracy.")
    per_family: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    outcomes: dict[str, bool] = Field(
        default_factory=dict,
        sa_column=Column(JSON),
        description="Per held-out pair id: ranked right? The gate's paired comparisons.",
    )
    created_at: datetime = Field(default_factory=utcnow)


class PairOutcomeRecord(SQLModel, table=True):
    """How one critic ranked the held-out pairs of one pair set, by content on both sides
    (the critic's fingerprint, the pair set's digest): kept so that an evaluation scores
    only pairs that critic has not ranked yet, and a cycle's cost does not grow with the
    history it re-checks."""

    __tablename__ = "pair_outcomes"
    __table_args__ = (UniqueConstraint("critic", "pair_set"),)

    id: int | None = Field(default=None, primary_key=True)
    critic: str = Field(index=True, description="The critic's fingerprint (weights + config).")
    pair_set: str = Field(description="The pair set's digest (manifest and images).")
    outcomes: dict[str, bool] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False),
        description="Per pair id: ranked right?",
    )
    updated_at: datetime = Field(default_factory=utcnow)


class DriftCheck(SQLModel, table=True):
    __tablename__ = "drift_checks"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(
        description="critic: champion vs challenger; generator: release shift at its cycle; "
        "watch: the latest release vs the earlier ones under the current champion"
    )
    release_id: str | None = Field(default=None, foreign_key="releases.id", index=True)
    drifted: bool
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    report_html: str | None = None
    report_json: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ReleaseScore(SQLModel, table=True):
    """A release's samples as one critic version scored them: the leaderboard's rows."""

    __tablename__ = "release_scores"
    __table_args__ = (UniqueConstraint("release_id", "critic_version_id"),)

    id: int | None = Field(default=None, primary_key=True)
    release_id: str = Field(foreign_key="releases.id", index=True)
    critic_version_id: int = Field(foreign_key="critic_versions.id", index=True)
    images: int
    quality_mean: float
    quality_std: float
    alignment_mean: float | None = None
    alignment_std: float | None = None
    quality_low: float | None = Field(default=None, description="Interval of the mean.")
    quality_high: float | None = None
    alignment_low: float | None = None
    alignment_high: float | None = None
    scores_path: str = Field(description="Per-image scores (Parquet).")
    created_at: datetime = Field(default_factory=utcnow)


class AlertRecord(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("dedup_key", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(index=True)
    channel: str
    title: str
    severity: str
    delivered: bool = False
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Incident(SQLModel, table=True):
    """Repeated breaches of one kind (e.g. quality ranking between critics) are one
    incident, alerted once when it opens and closed when a check of its kind passes."""

    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(index=True, description="What the breaches share: shift:quality:fell")
    breaches: int = 1
    opened_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = Field(default=None, description="None while it is open.")

    @property
    def dedup_key(self) -> str:
        return f"{self.topic}#{self.id}"


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(index=True)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    ok: bool | None = None
    detail: str | None = None
    executor: str | None = Field(
        default=None, description="Where a release step's work ran: local or ray."
    )
    workers: int | None = Field(default=None, description="The executor's workers.")


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
    that start together migrate one after another, see :func:`daemon.lock.migration_lock`)."""
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
        with self.session() as session:
            for row in rows:
                session.merge(row)
            session.commit()

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
            query = select(CriticVersion).where(CriticVersion.status == "champion")
            return session.exec(query).first()

    def delete(self, row: SQLModel) -> None:
        with self.session() as session:
            session.delete(session.merge(row))
            session.commit()

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

    def keep_pair_outcomes(
        self, critic: str, pair_sets: dict[str, str], outcomes: dict[str, bool]
    ) -> None:
        """Add ``outcomes`` (keyed as :meth:`pair_outcomes` returns them) to what is kept."""
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
                session.add(row)
            session.commit()

    def rows(self, table: type[SQLModel], **where: Any) -> list[Any]:
        with self.session() as session:
            query = select(table)
            for column, value in where.items():
                query = query.where(getattr(table, column) == value)
            return list(session.exec(query).all())
