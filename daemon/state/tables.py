"""The daemon's durable state: SQLModel tables in SQLite (default) or PostgreSQL.

Progress lives here, not in the scheduler: each release row records the last step it
completed, so a daemon killed at any point resumes at the next step after a restart. The
schema is created and upgraded by Alembic migrations (:mod:`daemon.state.database`).

Release states, in order (``parked`` is reached from any of them after ``max_attempts``
failures of one step, and left by ``eliq-daemon retry``)::

    discovered -> sampled -> paired -> trained -> registered -> evaluated -> drift_checked
        -> decided -> done
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


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


class CriticStatus(StrEnum):
    """Where a critic version stands: retuned, registered as the challenger, the champion,
    held by the gate, or a champion since replaced."""

    trained = "trained"
    challenger = "challenger"
    champion = "champion"
    held = "held"
    retired = "retired"


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
    parent_version: str | None = Field(
        default=None, description="The store version it was retuned from."
    )
    store_version: str | None = Field(
        default=None, description="Its version in the critic store (MLflow's model registry)."
    )
    status: str = Field(default=CriticStatus.trained, description="A CriticStatus.")
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
    seconds: float | None = Field(
        default=None,
        description="Wall seconds of scoring these images; releases scored together share "
        "the run's time in proportion to their images.",
    )
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
